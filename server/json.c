/* server/json.c — a strict JSON walk (see json.h). */
#include "server/json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct walk {
	const char *s, *end;
	int depth;
};

static void ws(struct walk *w)
{
	while (w->s < w->end && (*w->s == ' ' || *w->s == '\t' || *w->s == '\n' || *w->s == '\r'))
		w->s++;
}

/* At '"': moves past the closing quote; p and len: the bytes between. */
static int string(struct walk *w, const char **p, size_t *len)
{
	const char *s = ++w->s;

	while (w->s < w->end && *w->s != '"') {
		unsigned char c = (unsigned char)*w->s;
		if (c < 0x20)
			return -EINVAL;
		if (c == '\\') {
			if (++w->s >= w->end)
				return -EINVAL;
			if (*w->s == 'u') {
				for (int i = 0; i < 4; i++)
					if (++w->s >= w->end ||
					    !((*w->s >= '0' && *w->s <= '9') ||
					      (*w->s >= 'a' && *w->s <= 'f') ||
					      (*w->s >= 'A' && *w->s <= 'F')))
						return -EINVAL;
			} else if (!strchr("\"\\/bfnrt", *w->s)) {
				return -EINVAL;
			}
		}
		w->s++;
	}
	if (w->s >= w->end)
		return -EINVAL;
	*p = s;
	*len = (size_t)(w->s - s);
	w->s++;
	return 0;
}

static int skip(struct walk *w);

static int word(struct walk *w, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(w->end - w->s) < n || memcmp(w->s, lit, n))
		return -EINVAL;
	w->s += n;
	return 0;
}

static int number(struct walk *w)
{
	const char *s = w->s;

	if (w->s < w->end && *w->s == '-')
		w->s++;
	if (w->s >= w->end || *w->s < '0' || *w->s > '9')
		return -EINVAL;
	while (w->s < w->end && ((*w->s >= '0' && *w->s <= '9') || *w->s == '.' ||
				 *w->s == 'e' || *w->s == 'E' || *w->s == '+' || *w->s == '-'))
		w->s++;
	return w->s > s ? 0 : -EINVAL;
}

/* Container bodies: calls back per member; stops early if f returns 1. */
static int container(struct walk *w, int obj,
		     int (*f)(struct walk *w, const char *k, size_t kl, size_t idx, void *a),
		     void *a)
{
	size_t idx = 0;
	int rc;

	if (++w->depth > SRV_JSON_DEPTH_MAX)
		return -EINVAL;
	w->s++;
	ws(w);
	if (w->s < w->end && *w->s == (obj ? '}' : ']')) {
		w->s++;
		w->depth--;
		return 0;
	}
	for (;; idx++) {
		const char *k = NULL;
		size_t kl = 0;

		ws(w);
		if (obj) {
			if (w->s >= w->end || *w->s != '"' || string(w, &k, &kl))
				return -EINVAL;
			ws(w);
			if (w->s >= w->end || *w->s++ != ':')
				return -EINVAL;
			ws(w);
		}
		if (f && (rc = f(w, k, kl, idx, a)) != 0)
			return rc;
		if (!f && (rc = skip(w)))
			return rc;
		ws(w);
		if (w->s >= w->end)
			return -EINVAL;
		if (*w->s == ',') {
			w->s++;
			continue;
		}
		if (*w->s++ != (obj ? '}' : ']'))
			return -EINVAL;
		w->depth--;
		return 0;
	}
}

static int skip(struct walk *w)
{
	const char *p;
	size_t l;

	ws(w);
	if (w->s >= w->end)
		return -EINVAL;
	switch (*w->s) {
	case '"': return string(w, &p, &l);
	case '{': return container(w, 1, NULL, NULL);
	case '[': return container(w, 0, NULL, NULL);
	case 't': return word(w, "true");
	case 'f': return word(w, "false");
	case 'n': return word(w, "null");
	default: return number(w);
	}
}

struct find {
	const char *path;   /* the rest of the path */
	struct srv_json_val *v;
	int found;
};

static int value_at(struct walk *w, const char *path, struct srv_json_val *v);

static int on_member(struct walk *w, const char *k, size_t kl, size_t idx, void *a)
{
	struct find *f = a;
	const char *dot = strchr(f->path, '.');
	size_t seg = dot ? (size_t)(dot - f->path) : strlen(f->path);
	int match;

	if (k) {
		match = kl == seg && !memcmp(k, f->path, seg);
	} else {
		char num[24];
		int n = snprintf(num, sizeof(num), "%zu", idx);
		match = (size_t)n == seg && !memcmp(num, f->path, seg);
	}
	if (!match)
		return skip(w);
	{
		int rc = value_at(w, dot ? dot + 1 : "", f->v);
		if (rc < 0)
			return rc;
	}
	f->found = 1;
	return 1; /* stop: the walk does not need to validate the rest */
}

static int value_at(struct walk *w, const char *path, struct srv_json_val *v)
{
	const char *start;
	int rc;

	ws(w);
	if (w->s >= w->end)
		return -EINVAL;
	if (*path) {
		struct find f = { path, v, 0 };
		if (*w->s != '{' && *w->s != '[')
			return -ENOENT;
		rc = container(w, *w->s == '{', on_member, &f);
		if (rc < 0)
			return rc;
		return f.found ? 1 : -ENOENT;
	}
	start = w->s;
	switch (*w->s) {
	case '"':
		v->type = SRV_JSON_STRING;
		if ((rc = string(w, &v->p, &v->len)))
			return rc;
		return 1;
	case '{': v->type = SRV_JSON_OBJECT; break;
	case '[': v->type = SRV_JSON_ARRAY; break;
	case 't': case 'f': v->type = SRV_JSON_BOOL; break;
	case 'n': v->type = SRV_JSON_NULL; break;
	default: v->type = SRV_JSON_NUMBER; break;
	}
	if ((rc = skip(w)))
		return rc;
	v->p = start;
	v->len = (size_t)(w->s - start);
	return 1;
}

int srv_json_get(const char *doc, size_t n, const char *path,
		 struct srv_json_val *v)
{
	struct walk w = { doc, doc + n, 0 };
	int rc = value_at(&w, path, v);

	return rc == 1 ? 0 : rc;
}

int srv_json_str(const char *doc, size_t n, const char *path, char *out, size_t max)
{
	struct srv_json_val v;
	int rc = srv_json_get(doc, n, path, &v);

	if (rc)
		return rc;
	if (v.type != SRV_JSON_STRING || v.len >= max || memchr(v.p, '\\', v.len))
		return -EINVAL;
	memcpy(out, v.p, v.len);
	out[v.len] = 0;
	return 0;
}

int srv_json_u64(const char *doc, size_t n, const char *path, uint64_t *out)
{
	struct srv_json_val v;
	uint64_t x = 0;
	int rc = srv_json_get(doc, n, path, &v);

	if (rc)
		return rc;
	if ((v.type != SRV_JSON_STRING && v.type != SRV_JSON_NUMBER) || v.len == 0 || v.len > 20)
		return -EINVAL;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -EINVAL;
		if (x > (UINT64_MAX - (uint64_t)(v.p[i] - '0')) / 10)
			return -EINVAL;
		x = x * 10 + (uint64_t)(v.p[i] - '0');
	}
	*out = x;
	return 0;
}

int srv_json_true(const char *doc, size_t n, const char *path)
{
	struct srv_json_val v;

	return srv_json_get(doc, n, path, &v) == 0 && v.type == SRV_JSON_BOOL &&
	       v.len == 4 && !memcmp(v.p, "true", 4);
}

long srv_json_escape(const char *s, size_t n, char *out, size_t max)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			if (o + 2 > max)
				return -ENOSPC;
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			if (o + 6 > max)
				return -ENOSPC;
			o += (size_t)snprintf(out + o, 7, "\\u%04x", c);
		} else {
			if (o + 1 > max)
				return -ENOSPC;
			out[o++] = (char)c;
		}
	}
	return (long)o;
}
