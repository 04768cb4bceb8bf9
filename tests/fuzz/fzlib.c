/* fzlib.c - helpers the fuzz targets share (fuzz.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

int fz_private_cwd(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/umpath-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir) || chdir(dir)) {
		fprintf(stderr, "fuzz: private directory %s: %s\n", dir, strerror(errno));
		return -1;
	}
	/* Empty and gone: nothing can be created in it by a path string. */
	rmdir(dir);
	return 0;
}

int fz_reaches_out(const uint8_t *data, size_t size)
{
	return memchr(data, '/', size) != NULL;
}

/* ---- a strict JSON checker (RFC 8259), recursive descent --------------- */

struct js {
	const char *p, *end;
	unsigned depth;
};

static void js_ws(struct js *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool js_lit(struct js *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
		return false;
	j->p += n;
	return true;
}

/* The rest of a UTF-8 sequence that began with lead (>= 0x80): JSON text
 * is UTF-8, and a parser may refuse anything else. */
static bool js_utf8_tail(struct js *j, unsigned char lead)
{
	unsigned n, cp, min;

	if (lead >= 0xc2 && lead <= 0xdf)
		n = 1, cp = lead & 0x1f, min = 0x80;
	else if (lead >= 0xe0 && lead <= 0xef)
		n = 2, cp = lead & 0x0f, min = 0x800;
	else if (lead >= 0xf0 && lead <= 0xf4)
		n = 3, cp = lead & 0x07, min = 0x10000;
	else
		return false;
	for (unsigned i = 0; i < n; i++, j->p++) {
		if (j->p >= j->end || ((unsigned char)*j->p & 0xc0) != 0x80)
			return false;
		cp = cp << 6 | ((unsigned char)*j->p & 0x3f);
	}
	return cp >= min && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

static bool js_string(struct js *j)
{
	if (j->p >= j->end || *j->p != '"')
		return false;
	j->p++;
	while (j->p < j->end) {
		unsigned char ch = (unsigned char)*j->p++;

		if (ch == '"')
			return true;
		if (ch < 0x20)
			return false;	/* control characters must be escaped */
		if (ch >= 0x80) {
			if (!js_utf8_tail(j, ch))
				return false;
			continue;
		}
		if (ch != '\\')
			continue;
		if (j->p >= j->end)
			return false;
		ch = (unsigned char)*j->p++;
		if (ch == 'u') {
			for (int i = 0; i < 4; i++, j->p++)
				if (j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p) || !*j->p)
					return false;
		} else if (!strchr("\"\\/bfnrt", ch) || !ch) {
			return false;
		}
	}
	return false;
}

static bool js_digits(struct js *j)
{
	const char *s = j->p;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > s;
}

static bool js_number(struct js *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (!js_digits(j))
		return false;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!js_digits(j))
			return false;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!js_digits(j))
			return false;
	}
	return true;
}

static bool js_value(struct js *j);

static bool js_container(struct js *j, char close, bool object)
{
	j->p++;
	js_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return true;
	}
	for (;;) {
		if (object) {
			js_ws(j);
			if (!js_string(j))
				return false;
			js_ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return false;
		}
		if (!js_value(j))
			return false;
		js_ws(j);
		if (j->p >= j->end)
			return false;
		if (*j->p == close) {
			j->p++;
			return true;
		}
		if (*j->p++ != ',')
			return false;
	}
}

static bool js_value(struct js *j)
{
	bool ok;

	js_ws(j);
	if (j->p >= j->end || ++j->depth > 256)
		return false;
	switch (*j->p) {
	case '{': ok = js_container(j, '}', true); break;
	case '[': ok = js_container(j, ']', false); break;
	case '"': ok = js_string(j); break;
	case 't': ok = js_lit(j, "true"); break;
	case 'f': ok = js_lit(j, "false"); break;
	case 'n': ok = js_lit(j, "null"); break;
	default: ok = js_number(j); break;
	}
	j->depth--;
	return ok;
}

int fz_json_valid(const char *buf, size_t len)
{
	struct js j = { .p = buf, .end = buf + len };

	if (!js_value(&j))
		return 0;
	js_ws(&j);
	return j.p == j.end;
}
