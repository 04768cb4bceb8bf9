/* json.h - a small streaming JSON writer for umpathd's --json output.
 *
 * The caller opens and closes objects and arrays in order and names each
 * member of an object (key) or passes NULL for array elements and the top
 * level value; the writer puts the commas, the quotes and the escapes.
 * Strings are written as valid JSON whatever bytes they hold: quotes,
 * backslashes and control characters are escaped, and bytes that are not
 * UTF-8 become U+FFFD, so that a path or map name from a client can never
 * break the document.  Numbers are written as numbers.
 *
 * Nesting is bounded (JSON_MAX_DEPTH); deeper opens are ignored, which
 * would be a bug in the caller, not something the input decides.
 */
#ifndef UMPATH_JSON_H
#define UMPATH_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	bool pretty;			/* indent and break lines; else one line */
	unsigned depth;
	bool nonempty[JSON_MAX_DEPTH + 1]; /* a value was written at this level */
	char closer[JSON_MAX_DEPTH + 1];   /* '}' or ']' for each open level */
};

/* The length of the valid UTF-8 sequence at s, or 0 if it is not one (for
 * other writers of text a client's bytes must not break: metrics). */
size_t json_utf8_len(const unsigned char *s);

void json_init(struct json *j, FILE *f, bool pretty);
/* After the top-level value: ends the line. */
void json_end(struct json *j);

void json_object_begin(struct json *j, const char *key);
void json_object_end(struct json *j);
void json_array_begin(struct json *j, const char *key);
void json_array_end(struct json *j);
/* Close every object and array still open (after an error midway: the
 * output stays a complete document). */
void json_close_all(struct json *j);

/* val NULL writes null. */
void json_string(struct json *j, const char *key, const char *val);
void json_uint(struct json *j, const char *key, uint64_t val);
void json_int(struct json *j, const char *key, int64_t val);
void json_bool(struct json *j, const char *key, bool val);
void json_null(struct json *j, const char *key);

/* A JSON string literal (with its quotes) on f, escaped as above. */
void json_write_string(FILE *f, const char *s);

#endif
