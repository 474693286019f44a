/*
 * log.h - the service's structured log: one JSON object per line on a
 * stream (stderr by default), fixed keys ts, level, event, then typed fields.
 *
 *   log_event(log, LOG_INFO, "job.done", (struct log_field[]){
 *       LOG_STR("job", id), LOG_F64("rtf", rtf), LOG_END});
 *
 * Used by every layer above the engines (the engine libraries never log). Thread-safe:
 * each line is written whole under a mutex.
 */
#ifndef SD_TELEMETRY_LOG_H
#define SD_TELEMETRY_LOG_H

#include <stdint.h>
#include <stdio.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

enum log_field_type { LOG_T_END, LOG_T_STR, LOG_T_I64, LOG_T_F64, LOG_T_BOOL };

struct log_field {
    const char *key;
    enum log_field_type type;
    const char *s;
    int64_t i;
    double f;
};

#define LOG_STR(k, v) {(k), LOG_T_STR, (v), 0, 0}
#define LOG_I64(k, v) {(k), LOG_T_I64, 0, (int64_t)(v), 0}
#define LOG_F64(k, v) {(k), LOG_T_F64, 0, 0, (double)(v)}
#define LOG_BOOL(k, v) {(k), LOG_T_BOOL, 0, (v) ? 1 : 0, 0}
#define LOG_END {0, LOG_T_END, 0, 0, 0}

struct sd_log;

/* Logs to `out` (borrowed) events at min_level and above. Caller owns: log_destroy(). */
struct sd_log *log_create(FILE *out, enum log_level min_level);
void log_destroy(struct sd_log *l);
/* "debug" | "info" | "warn" | "error" -> level; -1 if unknown. */
int log_level_parse(const char *name);
/* fields: an array ending with LOG_END, or NULL. NULL l: no-op. */
void log_event(struct sd_log *l, enum log_level level, const char *event,
               const struct log_field *fields);

#endif
