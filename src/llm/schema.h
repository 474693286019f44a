/*
 * schema.h - a small JSON Schema subset: what structured-output templates
 * use and what LLM providers honour in their strict modes. Debian 12 has no
 * C JSON Schema library that fits (nothing packaged builds on jansson), so
 * this is ours.
 *
 * Keywords: type (a name or an array of names, "null" among them for a
 * nullable value; "integer" is a number without a fraction), properties,
 * required, items, enum, additionalProperties (false, or a schema),
 * minimum/maximum, minLength/maxLength (in Unicode code points),
 * minItems/maxItems. Descriptive keywords (title, description, ...) are
 * ignored; so is any keyword outside the subset, which schema_check lists so
 * an operator knows it will not be enforced.
 *
 * Errors are collected as {"path": JSON pointer, "message": text}; messages
 * never repeat the instance's values (they may be transcript text).
 * Pure functions on the caller's JSON; thread-safe.
 */
#ifndef SD_LLM_SCHEMA_H
#define SD_LLM_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>

#include "util/err.h"

/* Errors kept per validation: enough for a repair prompt, bounded for a hostile answer. */
#define SCHEMA_MAX_ERRORS 32

/*
 * Checks that schema is a usable schema of the subset: an object whose
 * known keywords have the right shapes, recursively. SD_EINVAL names the
 * JSON pointer of the first fault.
 */
enum sd_err schema_check(const json_t *schema, struct sd_error *err);

/*
 * Validates instance against schema. Returns true when valid; otherwise
 * appends up to SCHEMA_MAX_ERRORS {"path","message"} objects to errors (a
 * JSON array, may be NULL).
 */
bool schema_validate(const json_t *schema, const json_t *instance, json_t *errors);

/* The errors as lines "PATH: MESSAGE" for a prompt (malloc'd; NULL on ENOMEM). */
char *schema_errors_text(const json_t *errors);

#endif
