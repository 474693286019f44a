/*
 * stream.h - the bytes a streaming reply (SSE) sends while its job runs: the
 * worker appends events as segments become final, the connection's thread
 * reads them as they arrive. One writer and one reader; thread-safe.
 */
#ifndef SD_JOBS_STREAM_H
#define SD_JOBS_STREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct job_stream;

/* NULL when out of memory. Caller owns: job_stream_free(). */
struct job_stream *job_stream_create(void);
void job_stream_free(struct job_stream *s);
/* Appends bytes (copied) and wakes the reader; false when out of memory or closed. */
bool job_stream_append(struct job_stream *s, const char *data, size_t n);
/* No more bytes will come. */
void job_stream_close(struct job_stream *s);
/*
 * Copies up to max bytes starting at offset into buf, waiting up to
 * timeout_ms for some to arrive. Returns the count; 0 with *eof set when the
 * stream is closed and everything was read, 0 without it on timeout.
 */
size_t job_stream_read(struct job_stream *s, size_t offset, char *buf, size_t max, int timeout_ms,
                       bool *eof);

/*
 * Server-sent events: ev as compact JSON framed "data: ...\n\n". Each takes
 * ownership of nothing but ev; the result is malloc'd (caller frees), NULL
 * when out of memory or when the text is not valid UTF-8.
 */
char *sse_event(json_t *ev);
/* OpenAI's transcription stream: one delta per segment, then done with the whole text. */
char *sse_delta_event(const char *delta);
char *sse_done_event(const char *text);
/* Appends an event from the functions above and frees it; false if event is NULL or on failure. */
bool job_stream_append_event(struct job_stream *s, char *event);

#endif
