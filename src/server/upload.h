/*
 * upload.h - a multipart/form-data body streamed as it arrives: the "file"
 * part goes straight to a file in the uploads dir (never held in memory,
 * size limit enforced chunk by chunk), other fields are kept (bounded).
 * Also checks the file's name and first bytes against the accepted types,
 * so non-audio is refused with 415 as soon as those bytes arrive (not after
 * the whole body) and before any decoder sees it.
 *
 * Ownership: the upload deletes its file when destroyed unless
 * upload_keep() was called (an async job took it), and at once when feeding
 * or finishing fails, so that the space is free before the error answer
 * goes out (the connection may linger long after it).
 */
#ifndef SD_SERVER_UPLOAD_H
#define SD_SERVER_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct upload;
struct MHD_Connection;

#define UPLOAD_FILE_FIELD "file"

/*
 * Starts parsing the body of connection c; the file part is written to path.
 * allowed: the accepted file types as a comma list of extensions ("wav,mp3",
 * kept by pointer: it must outlive the upload). SD_EINVAL if the request is
 * not multipart/form-data (or urlencoded).
 */
enum sd_err upload_create(struct MHD_Connection *c, const char *path, int64_t max_file_bytes,
                          const char *allowed, struct upload **out, struct sd_error *err);
/*
 * Feeds one chunk of body. SD_ETOOBIG past the limit, SD_EUNSUPPORTED once the
 * file's name or first bytes show it is not an accepted type, SD_EINVAL on a
 * malformed body.
 */
enum sd_err upload_feed(struct upload *u, const char *data, size_t n, struct sd_error *err);
/* After the last chunk: flushes and closes the file. */
enum sd_err upload_finish(struct upload *u, struct sd_error *err);
void upload_destroy(struct upload *u);

bool upload_has_file(const struct upload *u);
int64_t upload_file_bytes(const struct upload *u);
const char *upload_file_name(const struct upload *u); /* as sent, "" if none */
const char *upload_path(const struct upload *u);
/* Moves the file to new_path (same file system) and keeps it past destroy. */
enum sd_err upload_keep_as(struct upload *u, const char *new_path, struct sd_error *err);
/* First value of a text field, NULL if absent. */
const char *upload_field(const struct upload *u, const char *key);
/* All values of a repeated field (e.g. "timestamp_granularities[]"); returns the count. */
int upload_field_all(const struct upload *u, const char *key, const char **vals, int max);
/* Container guessed from the first bytes ("wav", "mp3", ...), or NULL if not audio we know. */
const char *upload_sniff(const struct upload *u);
/*
 * The file's type check on what has arrived (the complete one after
 * upload_finish): SD_EUNSUPPORTED, naming the accepted types, when its
 * extension is not in the allowed list or its first bytes are not audio.
 */
enum sd_err upload_check_type(const struct upload *u, struct sd_error *err);

#endif
