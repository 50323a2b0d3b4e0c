/* tests/cluster/checker.c — the history checker (contract in checker.h).
 *
 * Divisions: text helpers and the report, parsing, per-key register
 * operations, the WGL search, the checks (a)..(e), outages.
 */
#include "tests/cluster/checker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VER_UNKNOWN UINT64_MAX
#define T_OPEN INT64_MAX
/* Lines of context shown before the op a search got stuck on. */
#define EXCERPT_BEFORE 12

enum op_kind { OP_PUT, OP_GET, OP_CAS, OP_INCR, OP_BATCH };
enum op_outcome { OC_PENDING, OC_OK, OC_FAIL, OC_INFO, OC_STALE };

struct ckc_op {
	long id;
	int thread, kind, outcome, status, has_ver;
	char *key, *a1, *a2, *value;
	uint64_t ver;
	int64_t t_inv, t_ret;
	char *line_inv, *line_ret;
};

struct ckc_history {
	struct ckc_op *ops;
	size_t n;
	int64_t t_max;
};

struct dump_entry {
	char *key, *value;
	uint64_t ver;
};

struct ckc_dump {
	char name[64];
	struct dump_entry *e;
	size_t n;
};

/* ==== text helpers and the report ====================================== */

char *ckc_encode(const void *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = p;
	char *out = malloc(n * 3 + 2), *o = out;

	if (!out)
		return NULL;
	if (n == 0)
		*o++ = '%';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		    c == ',' || c == ':' || c == '-') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

static void say(struct ckc_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(struct ckc_result *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = r->cap - r->len;

		va_start(ap, fmt);
		n = r->report ? vsnprintf(r->report + r->len, room, fmt, ap) : -1;
		va_end(ap);
		if (n >= 0 && (size_t)n < room) {
			r->len += (size_t)n;
			return;
		}
		size_t ncap = r->cap ? r->cap * 2 : 4096;
		while (n >= 0 && ncap - r->len <= (size_t)n)
			ncap *= 2;
		char *nr = realloc(r->report, ncap);
		if (!nr)
			return;
		r->report = nr;
		r->cap = ncap;
	}
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d) {
		perror("checker: strdup");
		abort();
	}
	return d;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (!f)
		return NULL;
	do {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* ==== parsing ============================================================ */

static int kind_of(const char *s)
{
	static const char *const names[] = { "put", "get", "cas", "incr", "batch" };

	for (int i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static int outcome_of(const char *s)
{
	if (strcmp(s, "ok") == 0)
		return OC_OK;
	if (strcmp(s, "fail") == 0)
		return OC_FAIL;
	if (strcmp(s, "info") == 0)
		return OC_INFO;
	if (strcmp(s, "stale") == 0)
		return OC_STALE;
	return -1;
}

static struct ckc_op *find_op(struct ckc_history *h, long id)
{
	/* A completion follows its invocation by at most a few in-flight
	 * ops: look back from the end. */
	for (size_t i = h->n; i > 0; i--)
		if (h->ops[i - 1].id == id)
			return &h->ops[i - 1];
	return NULL;
}

static int parse_invoke(struct ckc_history *h, char *line, const char *raw)
{
	char op[16], key[256], a1[1024], a2[64];
	long id;
	int thread;
	int64_t t;
	struct ckc_op *o;

	if (sscanf(line, "I %ld %d %" SCNd64 " %15s %255s %1023s %63s", &id,
		   &thread, &t, op, key, a1, a2) != 7 || kind_of(op) < 0)
		return -EINVAL;
	if (h->n % 1024 == 0) {
		struct ckc_op *no = realloc(h->ops, (h->n + 1024) * sizeof(*no));
		if (!no)
			return -ENOMEM;
		h->ops = no;
	}
	o = &h->ops[h->n++];
	memset(o, 0, sizeof(*o));
	o->id = id;
	o->thread = thread;
	o->kind = kind_of(op);
	o->key = xstrdup(key);
	o->a1 = xstrdup(a1);
	o->a2 = xstrdup(a2);
	o->t_inv = t;
	o->t_ret = T_OPEN;
	o->outcome = OC_PENDING;
	o->line_inv = xstrdup(raw);
	if (t > h->t_max)
		h->t_max = t;
	return 0;
}

static int parse_complete(struct ckc_history *h, char *line, const char *raw)
{
	char oc[16], ver[32], val[4096];
	long id;
	int status;
	int64_t t;
	struct ckc_op *o;

	if (sscanf(line, "C %ld %" SCNd64 " %15s %d %31s %4095s", &id, &t, oc,
		   &status, ver, val) != 6 || outcome_of(oc) < 0)
		return -EINVAL;
	o = find_op(h, id);
	if (!o || o->line_ret)
		return -EINVAL;
	o->outcome = outcome_of(oc);
	o->status = status;
	if (strcmp(ver, "-") != 0) {
		o->has_ver = 1;
		o->ver = strtoull(ver, NULL, 10);
	}
	o->value = strcmp(val, "-") == 0 ? NULL : xstrdup(val);
	/* An indeterminate op may take effect any time after its call. */
	o->t_ret = o->outcome == OC_INFO ? T_OPEN : t;
	o->line_ret = xstrdup(raw);
	if (t > h->t_max)
		h->t_max = t;
	return 0;
}

int ckc_history_parse(const char *text, struct ckc_history **out, char *err,
		      size_t errn)
{
	struct ckc_history *h = calloc(1, sizeof(*h));
	char *copy = xstrdup(text), *save = NULL, *line;
	int lineno = 0, rc = 0;

	if (!h) {
		free(copy);
		return -ENOMEM;
	}
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (line[0] == 'I')
			rc = parse_invoke(h, line, line);
		else if (line[0] == 'C')
			rc = parse_complete(h, line, line);
		else
			rc = -EINVAL;
		if (rc < 0) {
			snprintf(err, errn, "history line %d: cannot parse: %.200s",
				 lineno, line);
			break;
		}
	}
	free(copy);
	if (rc < 0) {
		ckc_history_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

int ckc_history_load(const char *path, struct ckc_history **out, char *err,
		     size_t errn)
{
	char *text = read_file(path);
	int rc;

	if (!text) {
		snprintf(err, errn, "cannot read history %s", path);
		return -ENOENT;
	}
	rc = ckc_history_parse(text, out, err, errn);
	free(text);
	return rc;
}

void ckc_history_free(struct ckc_history *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		struct ckc_op *o = &h->ops[i];

		free(o->key);
		free(o->a1);
		free(o->a2);
		free(o->value);
		free(o->line_inv);
		free(o->line_ret);
	}
	free(h->ops);
	free(h);
}

static int cmp_dump_entry(const void *a, const void *b)
{
	return strcmp(((const struct dump_entry *)a)->key,
		      ((const struct dump_entry *)b)->key);
}

int ckc_dump_parse(const char *text, const char *name, struct ckc_dump **out,
		   char *err, size_t errn)
{
	struct ckc_dump *d = calloc(1, sizeof(*d));
	char *copy = xstrdup(text), *save = NULL, *line;
	int lineno = 0;

	if (!d) {
		free(copy);
		return -ENOMEM;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[2048], val[8192];
		unsigned long long v;

		lineno++;
		if (sscanf(line, "K %2047s %llu %8191s", key, &v, val) != 3) {
			snprintf(err, errn, "dump %s line %d: cannot parse: %.200s",
				 name, lineno, line);
			free(copy);
			ckc_dump_free(d);
			return -EINVAL;
		}
		if (d->n % 256 == 0) {
			struct dump_entry *ne = realloc(d->e, (d->n + 256) * sizeof(*ne));
			if (!ne) {
				free(copy);
				ckc_dump_free(d);
				return -ENOMEM;
			}
			d->e = ne;
		}
		d->e[d->n].key = xstrdup(key);
		d->e[d->n].value = xstrdup(val);
		d->e[d->n].ver = v;
		d->n++;
	}
	free(copy);
	if (d->n)
		qsort(d->e, d->n, sizeof(*d->e), cmp_dump_entry);
	*out = d;
	return 0;
}

int ckc_dump_load(const char *path, const char *name, struct ckc_dump **out,
		  char *err, size_t errn)
{
	char *text = read_file(path);
	int rc;

	if (!text) {
		snprintf(err, errn, "cannot read dump %s", path);
		return -ENOENT;
	}
	rc = ckc_dump_parse(text, name, out, err, errn);
	free(text);
	return rc;
}

void ckc_dump_free(struct ckc_dump *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->e[i].key);
		free(d->e[i].value);
	}
	free(d->e);
	free(d);
}

static const struct dump_entry *dump_find(const struct ckc_dump *d,
					  const char *key)
{
	struct dump_entry probe = { .key = (char *)key };

	if (!d->n)
		return NULL;
	return bsearch(&probe, d->e, d->n, sizeof(*d->e), cmp_dump_entry);
}

/* ==== per-key register operations ======================================= */

enum rop_kind { R_WRITE, R_CAS, R_READ };

struct rop {
	const struct ckc_op *op;
	int kind, info, has_ver;
	const char *val;      /* written or read value; NULL: read absent */
	int val_id;           /* interned per key; -1 absent */
	uint64_t ver, expect;
	int64_t call, ret;
};

struct keyhist {
	char *key;
	struct rop *r;
	size_t n, cap;
	int counter;          /* has incr ops: checked by (d), not (b) */
	const char **vals;    /* interned values */
	int nvals, capvals;
};

struct keyset {
	struct keyhist *k;
	size_t n, cap;
};

static struct keyhist *key_get(struct keyset *ks, const char *key)
{
	for (size_t i = 0; i < ks->n; i++)
		if (strcmp(ks->k[i].key, key) == 0)
			return &ks->k[i];
	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? ks->cap * 2 : 16;
		ks->k = realloc(ks->k, ks->cap * sizeof(*ks->k));
		if (!ks->k)
			abort();
	}
	memset(&ks->k[ks->n], 0, sizeof(ks->k[0]));
	ks->k[ks->n].key = xstrdup(key);
	return &ks->k[ks->n++];
}

static void rop_add(struct keyhist *k, const struct rop *r)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 64;
		k->r = realloc(k->r, k->cap * sizeof(*k->r));
		if (!k->r)
			abort();
	}
	k->r[k->n++] = *r;
}

static int intern(struct keyhist *k, const char *v)
{
	if (!v)
		return -1;
	for (int i = 0; i < k->nvals; i++)
		if (strcmp(k->vals[i], v) == 0)
			return i;
	if (k->nvals == k->capvals) {
		k->capvals = k->capvals ? k->capvals * 2 : 64;
		k->vals = realloc(k->vals, (size_t)k->capvals * sizeof(*k->vals));
		if (!k->vals)
			abort();
	}
	k->vals[k->nvals] = v;
	return k->nvals++;
}

static int is_2xx(const struct ckc_op *o)
{
	return o->outcome == OC_OK && o->status >= 200 && o->status < 300;
}

static int is_open(const struct ckc_op *o)
{
	return o->outcome == OC_INFO || o->outcome == OC_PENDING;
}

/* The idx-th comma-separated field of s into buf. */
static const char *field(const char *s, int idx, char *buf, size_t n)
{
	const char *p = s;

	for (int i = 0; i < idx && p; i++) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	if (!p)
		return NULL;
	size_t len = strcspn(p, ",");
	if (len >= n)
		len = n - 1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return buf;
}

static void add_write(struct keyset *ks, const struct ckc_op *o, const char *key,
		      const char *val, int kind)
{
	struct rop r = { .op = o, .kind = kind, .info = is_open(o),
			 .has_ver = o->has_ver && !is_open(o), .ver = o->ver,
			 .call = o->t_inv, .ret = is_open(o) ? T_OPEN : o->t_ret };
	struct keyhist *k = key_get(ks, key);

	if (kind == R_CAS)
		r.expect = strtoull(o->a2, NULL, 10);
	/* The value string lives in the op (a1) or in build_keys' list. */
	r.val = val;
	rop_add(k, &r);
}

/* Splits the history into per-key register operations; batches become one
 * write per key. Values of batch parts are strdup'd into *owned. */
static void build_keys(const struct ckc_history *h, struct keyset *ks,
		       char ***owned, size_t *nowned)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct ckc_op *o = &h->ops[i];
		int definite_fail = o->outcome == OC_FAIL ||
				    (o->outcome == OC_OK && !is_2xx(o));

		switch (o->kind) {
		case OP_INCR:
			key_get(ks, o->key)->counter = 1;
			break;
		case OP_PUT:
			if (!definite_fail)
				add_write(ks, o, o->key, o->a1, R_WRITE);
			break;
		case OP_CAS:
			if (!definite_fail)
				add_write(ks, o, o->key, o->a1, R_CAS);
			break;
		case OP_GET:
			if (o->outcome == OC_OK &&
			    (o->status == 200 || o->status == 404)) {
				struct rop r = { .op = o, .kind = R_READ,
						 .has_ver = o->has_ver,
						 .ver = o->ver,
						 .val = o->status == 200 ? o->value : NULL,
						 .call = o->t_inv, .ret = o->t_ret };
				if (o->status == 200 && !r.val)
					r.val = "%"; /* empty body */
				rop_add(key_get(ks, o->key), &r);
			} else {
				key_get(ks, o->key);
			}
			break;
		case OP_BATCH:
			for (int part = 0; part < 2; part++) {
				char kb[256], vb[1024];

				if (!field(o->key, part, kb, sizeof(kb)) ||
				    !field(o->a1, part, vb, sizeof(vb)))
					break;
				if (definite_fail) {
					key_get(ks, kb);
					continue;
				}
				*owned = realloc(*owned, (*nowned + 1) * sizeof(char *));
				if (!*owned)
					abort();
				(*owned)[(*nowned)++] = xstrdup(vb);
				add_write(ks, o, kb, (*owned)[*nowned - 1], R_WRITE);
			}
			break;
		}
	}
}

static void keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++) {
		free(ks->k[i].key);
		free(ks->k[i].r);
		free(ks->k[i].vals);
	}
	free(ks->k);
}

/* ==== the WGL search ====================================================== */

struct wstate {
	uint64_t ver;   /* 0 when absent; VER_UNKNOWN when not observed yet */
	int val;        /* -1 absent */
};

struct entry {
	int op, is_call, match, prev, next;
	int64_t t;
};

struct cache {
	uint64_t *bits;     /* nslots * words */
	struct wstate *st;
	uint64_t *hash;     /* 0 = empty slot */
	size_t nslots, used, words;
};

static uint64_t mix(uint64_t h, uint64_t x)
{
	h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h;
}

static uint64_t state_hash(const uint64_t *bits, size_t words,
			   struct wstate s)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < words; i++)
		h = mix(h, bits[i]);
	h = mix(h, s.ver);
	h = mix(h, (uint64_t)(int64_t)s.val);
	return h ? h : 1;
}

static int cache_grow(struct cache *c)
{
	struct cache n = { .words = c->words };

	n.nslots = c->nslots ? c->nslots * 2 : 1024;
	n.bits = calloc(n.nslots * n.words, sizeof(uint64_t));
	n.st = calloc(n.nslots, sizeof(*n.st));
	n.hash = calloc(n.nslots, sizeof(uint64_t));
	if (!n.bits || !n.st || !n.hash) {
		free(n.bits);
		free(n.st);
		free(n.hash);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->nslots; i++) {
		size_t j;

		if (!c->hash[i])
			continue;
		for (j = c->hash[i] & (n.nslots - 1); n.hash[j];
		     j = (j + 1) & (n.nslots - 1))
			;
		n.hash[j] = c->hash[i];
		n.st[j] = c->st[i];
		memcpy(&n.bits[j * n.words], &c->bits[i * c->words],
		       c->words * sizeof(uint64_t));
		n.used++;
	}
	free(c->bits);
	free(c->st);
	free(c->hash);
	*c = n;
	return 0;
}

/* 1 if (bits, s) was new and is now remembered, 0 if seen, -ENOMEM. */
static int cache_add(struct cache *c, const uint64_t *bits, struct wstate s)
{
	uint64_t h = state_hash(bits, c->words, s);
	size_t j;

	if ((c->used + 1) * 2 > c->nslots && cache_grow(c) < 0)
		return -ENOMEM;
	for (j = h & (c->nslots - 1); c->hash[j]; j = (j + 1) & (c->nslots - 1)) {
		if (c->hash[j] == h && c->st[j].ver == s.ver &&
		    c->st[j].val == s.val &&
		    memcmp(&c->bits[j * c->words], bits,
			   c->words * sizeof(uint64_t)) == 0)
			return 0;
	}
	c->hash[j] = h;
	c->st[j] = s;
	memcpy(&c->bits[j * c->words], bits, c->words * sizeof(uint64_t));
	c->used++;
	return 1;
}

/* The register with versions: may op r run in state s, and what then? */
static int step(struct wstate s, const struct rop *r, struct wstate *ns)
{
	int holds;

	switch (r->kind) {
	case R_READ:
		if (r->val_id < 0) {
			*ns = s;
			return s.val < 0;
		}
		if (s.val != r->val_id)
			return 0;
		if (s.ver != VER_UNKNOWN && r->has_ver && s.ver != r->ver)
			return 0;
		*ns = s;
		if (r->has_ver)
			ns->ver = r->ver; /* a read binds an unseen version */
		return 1;
	case R_CAS:
		holds = s.val >= 0 && (s.ver == VER_UNKNOWN || s.ver == r->expect);
		if (!holds) {
			*ns = s;
			return r->info; /* an open CAS may have failed */
		}
		/* fall through */
	case R_WRITE:
		if (r->has_ver && s.ver != VER_UNKNOWN && r->ver <= s.ver)
			return 0; /* versions only grow */
		ns->val = r->val_id;
		ns->ver = r->has_ver ? r->ver : VER_UNKNOWN;
		return 1;
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	/* Calls first at equal times: the ops count as concurrent. */
	if (x->is_call != y->is_call)
		return x->is_call ? -1 : 1;
	return x->op - y->op;
}

enum wgl_verdict { WGL_OK, WGL_FAIL, WGL_UNKNOWN };

struct wgl_out {
	int stuck_op;     /* the op whose return no linearization reached */
	long steps;
};

static void lift(struct entry *e, int i)
{
	int m = e[i].match;

	e[e[i].prev].next = e[i].next;
	e[e[i].next].prev = e[i].prev;
	e[e[m].prev].next = e[m].next;
	e[e[m].next].prev = e[m].prev;
}

static void unlift(struct entry *e, int i)
{
	int m = e[i].match;

	e[e[m].prev].next = m;
	e[e[m].next].prev = m;
	e[e[i].prev].next = i;
	e[e[i].next].prev = i;
}

static int wgl(const struct rop *ops, int n, long limit, struct wgl_out *out)
{
	int head = 2 * n, tail = 2 * n + 1, depth = 0, best = -1, rc = WGL_OK;
	struct entry *e = calloc((size_t)(2 * n + 2), sizeof(*e));
	int *idx = calloc((size_t)(2 * n), sizeof(int));
	struct { int entry; struct wstate s; } *stack = calloc((size_t)n + 1, sizeof(*stack));
	struct cache c = { .words = ((size_t)n + 63) / 64 };
	uint64_t *bits = calloc(c.words ? c.words : 1, sizeof(uint64_t));
	struct wstate s = { 0, -1 };
	int cur;

	out->stuck_op = -1;
	out->steps = 0;
	if (!e || !idx || !stack || !bits) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (int i = 0; i < n; i++) {
		e[2 * i] = (struct entry){ .op = i, .is_call = 1, .t = ops[i].call };
		e[2 * i + 1] = (struct entry){ .op = i, .is_call = 0, .t = ops[i].ret };
	}
	qsort(e, (size_t)(2 * n), sizeof(*e), cmp_entry);
	for (int i = 0; i < 2 * n; i++)
		idx[e[i].op * 2 + !e[i].is_call] = i;
	for (int i = 0; i < 2 * n; i++) {
		e[i].match = idx[e[i].op * 2 + e[i].is_call];
		e[i].prev = i == 0 ? head : i - 1;
		e[i].next = i == 2 * n - 1 ? tail : i + 1;
	}
	e[head].next = n ? 0 : tail;
	e[tail].prev = n ? 2 * n - 1 : head;
	cur = e[head].next;
	while (e[head].next != tail) {
		if (++out->steps > limit) {
			rc = WGL_UNKNOWN;
			break;
		}
		if (cur == tail) {
			/* Only returns of open ops can end the list; they
			 * never block, so this cannot be reached with calls
			 * pending. Treat it as a dead end. */
			goto backtrack;
		}
		if (e[cur].is_call) {
			struct wstate ns;
			int op = e[cur].op, added;

			if (step(s, &ops[op], &ns)) {
				bits[op / 64] |= 1ULL << (op % 64);
				added = cache_add(&c, bits, ns);
				if (added < 0) {
					rc = -ENOMEM;
					break;
				}
				if (added) {
					stack[depth].entry = cur;
					stack[depth].s = s;
					depth++;
					s = ns;
					lift(e, cur);
					cur = e[head].next;
					continue;
				}
				bits[op / 64] &= ~(1ULL << (op % 64));
			}
			cur = e[cur].next;
			continue;
		}
		if (depth >= best) {
			best = depth;
			out->stuck_op = e[cur].op;
		}
backtrack:
		if (depth == 0) {
			rc = WGL_FAIL;
			break;
		}
		depth--;
		cur = stack[depth].entry;
		s = stack[depth].s;
		bits[e[cur].op / 64] &= ~(1ULL << (e[cur].op % 64));
		unlift(e, cur);
		cur = e[cur].next;
	}
out_free:
	free(e);
	free(idx);
	free(stack);
	free(bits);
	free(c.bits);
	free(c.st);
	free(c.hash);
	return rc;
}

/* ==== the checks ============================================================ */

static int value_observed(const struct keyhist *k, const char *v,
			  struct ckc_dump *const *dumps, int ndumps)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->r[i].kind == R_READ && k->r[i].val &&
		    strcmp(k->r[i].val, v) == 0)
			return 1;
	for (int d = 0; d < ndumps; d++) {
		const struct dump_entry *de = dump_find(dumps[d], k->key);

		if (de && strcmp(de->value, v) == 0)
			return 1;
	}
	return 0;
}

static void say_op(struct ckc_result *res, const struct ckc_op *o)
{
	say(res, "    %s\n", o->line_inv);
	say(res, "    %s\n", o->line_ret ? o->line_ret : "(no completion: indeterminate)");
}

/* The history lines around a key's stuck op: the EXCERPT_BEFORE ops
 * invoked before it, and every op invoked before it returned. */
static void excerpt(struct ckc_result *res, const struct rop *ops, int n,
		    int stuck, int max_ops)
{
	int64_t until = ops[stuck].ret == T_OPEN ? ops[stuck].call : ops[stuck].ret;
	int first = stuck, shown = 0;

	for (int i = stuck, before = 0; i > 0 && before < EXCERPT_BEFORE; i--, before++)
		first = i - 1;
	for (int i = first; i < n && shown < max_ops; i++) {
		if (ops[i].call > until)
			break;
		say(res, "  %s op %ld (%s):\n", i == stuck ? ">>" : "  ",
		    ops[i].op->id, ops[i].info ? "indeterminate" : "definite");
		say_op(res, ops[i].op);
		shown++;
	}
}

static int cmp_rop_call(const void *a, const void *b)
{
	const struct rop *x = a, *y = b;

	if (x->call != y->call)
		return x->call < y->call ? -1 : 1;
	return x->op->id < y->op->id ? -1 : x->op->id > y->op->id;
}

/* (b) for one register key. */
static void check_linear(struct keyhist *k, struct ckc_dump *const *dumps,
			 int ndumps, int64_t t_end, const struct ckc_opts *o,
			 struct ckc_result *res)
{
	struct rop *ops = calloc(k->n + 1, sizeof(*ops));
	struct ckc_op final_op = { .id = 0, .kind = OP_GET };
	char lbuf[256], rbuf[256];
	struct wgl_out wo;
	int n = 0, rc;

	if (!ops)
		abort();
	for (size_t i = 0; i < k->n; i++) {
		struct rop r = k->r[i];

		if (r.info && r.kind != R_READ && !value_observed(k, r.val, dumps, ndumps))
			continue; /* unseen open write: place it last */
		ops[n++] = r;
	}
	if (ndumps > 0) {
		/* The first member's final state, read after everything. */
		const struct dump_entry *de = dump_find(dumps[0], k->key);

		snprintf(lbuf, sizeof(lbuf), "final read on %s", dumps[0]->name);
		snprintf(rbuf, sizeof(rbuf), "final: %s %" PRIu64 " %s", k->key,
			 de ? de->ver : 0, de ? de->value : "(absent)");
		final_op.line_inv = lbuf;
		final_op.line_ret = rbuf;
		ops[n++] = (struct rop){ .op = &final_op, .kind = R_READ,
					 .has_ver = de != NULL,
					 .ver = de ? de->ver : 0,
					 .val = de ? de->value : NULL,
					 .call = t_end + 1, .ret = t_end + 2 };
	}
	qsort(ops, (size_t)n, sizeof(*ops), cmp_rop_call);
	for (int i = 0; i < n; i++)
		ops[i].val_id = intern(k, ops[i].val);
	rc = wgl(ops, n, o->step_limit, &wo);
	if (rc == WGL_UNKNOWN) {
		res->unknown++;
		say(res, "UNKNOWN (b) key %s: the linearizability search gave up "
		    "after %ld steps (%d ops)\n\n", k->key, wo.steps, n);
	} else if (rc == WGL_FAIL) {
		res->failures++;
		say(res, "FAIL (b) key %s: not linearizable (%d ops, %ld steps); "
		    "no order of the operations explains the one marked >>, "
		    "as a register with versions:\n", k->key, n, wo.steps);
		if (wo.stuck_op >= 0)
			excerpt(res, ops, n, wo.stuck_op, o->max_excerpt);
		say(res, "\n");
	} else if (rc < 0) {
		res->unknown++;
		say(res, "UNKNOWN (b) key %s: out of memory in the search\n\n", k->key);
	}
	free(ops);
}

/* (a) for one register key against one member's dump. */
static void check_lost(const struct keyhist *k, const struct ckc_dump *d,
		       struct ckc_result *res)
{
	const struct dump_entry *de = dump_find(d, k->key);
	int writer = 0;

	if (de) {
		for (size_t i = 0; i < k->n && !writer; i++)
			writer = k->r[i].kind != R_READ && k->r[i].val &&
				 strcmp(k->r[i].val, de->value) == 0;
		if (!writer) {
			res->failures++;
			say(res, "FAIL (a) key %s on %s: final value %s (version %"
			    PRIu64 ") was written by no operation of the history\n\n",
			    k->key, d->name, de->value, de->ver);
		}
	}
	for (size_t i = 0; i < k->n; i++) {
		const struct rop *r = &k->r[i];

		if (r->kind == R_READ || r->info || !r->has_ver)
			continue;
		if (de && de->ver >= r->ver)
			continue;
		res->failures++;
		say(res, "FAIL (a) key %s on %s: acknowledged write lost: the member "
		    "holds %s, the write below was acknowledged with version %" PRIu64
		    ":\n", k->key, d->name,
		    de ? de->value : "nothing (key absent)", r->ver);
		say_op(res, r->op);
		say(res, "\n");
		return; /* one per key and member is enough to read */
	}
}

struct vrec {
	const char *key, *val;
	uint64_t ver;
	const struct ckc_op *op; /* NULL: from a dump */
	const char *dump;
};

static int cmp_vrec(const void *a, const void *b)
{
	const struct vrec *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->ver < y->ver ? -1 : x->ver > y->ver;
}

static void say_vrec(struct ckc_result *res, const struct vrec *v)
{
	if (v->op) {
		say_op(res, v->op);
	} else {
		say(res, "    dump of %s: K %s %" PRIu64 " %s\n", v->dump, v->key,
		    v->ver, v->val);
	}
}

static void vrec_push(struct vrec **v, size_t *n, size_t *cap, struct vrec r)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		*v = realloc(*v, *cap * sizeof(**v));
		if (!*v)
			abort();
	}
	(*v)[(*n)++] = r;
}

static int cmp_op_ver(const void *a, const void *b)
{
	const struct ckc_op *x = *(const struct ckc_op *const *)a;
	const struct ckc_op *y = *(const struct ckc_op *const *)b;

	return x->ver < y->ver ? -1 : x->ver > y->ver;
}

/* (c): one value per (key, version); one write per version. */
static void check_versions(const struct keyset *ks, const struct ckc_history *h,
			   struct ckc_dump *const *dumps, int ndumps,
			   struct ckc_result *res)
{
	struct vrec *v = NULL;
	size_t n = 0, cap = 0, reported = 0;

	for (size_t i = 0; i < ks->n; i++)
		for (size_t j = 0; j < ks->k[i].n; j++) {
			const struct rop *r = &ks->k[i].r[j];

			if (r->has_ver && r->val && !r->info)
				vrec_push(&v, &n, &cap, (struct vrec){ ks->k[i].key,
					  r->val, r->ver, r->op, NULL });
		}
	for (size_t i = 0; i < h->n; i++) {
		const struct ckc_op *o = &h->ops[i];

		if (o->kind == OP_INCR && is_2xx(o) && o->has_ver && o->value)
			vrec_push(&v, &n, &cap, (struct vrec){ o->key, o->value,
				  o->ver, o, NULL });
		/* A replica may be behind, never wrong. */
		if (o->kind == OP_GET && o->outcome == OC_STALE && o->has_ver)
			vrec_push(&v, &n, &cap, (struct vrec){ o->key,
				  o->value ? o->value : "%", o->ver, o, NULL });
	}
	for (int d = 0; d < ndumps; d++)
		for (size_t i = 0; i < dumps[d]->n; i++)
			vrec_push(&v, &n, &cap, (struct vrec){ dumps[d]->e[i].key,
				  dumps[d]->e[i].value, dumps[d]->e[i].ver, NULL,
				  dumps[d]->name });
	if (n)
		qsort(v, n, sizeof(*v), cmp_vrec);
	for (size_t i = 1; i < n; i++) {
		if (cmp_vrec(&v[i - 1], &v[i]) != 0 ||
		    strcmp(v[i - 1].val, v[i].val) == 0)
			continue;
		res->failures++;
		if (reported++ >= 10)
			continue;
		say(res, "FAIL (c) key %s version %" PRIu64 " names two values, "
		    "%s and %s:\n", v[i].key, v[i].ver, v[i - 1].val, v[i].val);
		say_vrec(res, &v[i - 1]);
		say_vrec(res, &v[i]);
		say(res, "\n");
	}
	if (reported > 10)
		say(res, "FAIL (c) ... and %zu more versions with two values\n\n",
		    reported - 10);
	free(v);

	/* One version, one write: acknowledged writes of different ops. */
	{
		const struct ckc_op **w = NULL;
		size_t nw = 0;

		w = calloc(h->n + 1, sizeof(*w));
		if (!w)
			abort();
		for (size_t i = 0; i < h->n; i++)
			if (h->ops[i].kind != OP_GET && is_2xx(&h->ops[i]) &&
			    h->ops[i].has_ver)
				w[nw++] = &h->ops[i];
		if (nw)
			qsort(w, nw, sizeof(*w), cmp_op_ver);
		reported = 0;
		for (size_t i = 1; i < nw; i++) {
			if (w[i]->ver != w[i - 1]->ver || w[i]->id == w[i - 1]->id)
				continue;
			res->failures++;
			if (reported++ >= 10)
				continue;
			say(res, "FAIL (c) version %" PRIu64 " acknowledged to two "
			    "different writes:\n", w[i]->ver);
			say_op(res, w[i - 1]);
			say_op(res, w[i]);
			say(res, "\n");
		}
		if (reported > 10)
			say(res, "FAIL (c) ... and %zu more versions acknowledged to "
			    "two writes\n\n", reported - 10);
		free(w);
	}
}

/* (d) for one counter key. */
static void check_counter(const struct keyhist *k, const struct ckc_history *h,
			  struct ckc_dump *const *dumps, int ndumps,
			  struct ckc_result *res)
{
	long acked = 0, open = 0;
	int64_t max_seen = 0, *seen = NULL;
	size_t nseen = 0;

	seen = calloc(h->n + 1, sizeof(*seen));
	if (!seen)
		abort();
	for (size_t i = 0; i < h->n; i++) {
		const struct ckc_op *o = &h->ops[i];
		long by;

		if (o->kind != OP_INCR || strcmp(o->key, k->key) != 0)
			continue;
		by = strtol(o->a1, NULL, 10);
		if (is_2xx(o)) {
			acked += by;
			if (o->value) {
				int64_t v = strtoll(o->value, NULL, 10);

				seen[nseen++] = v;
				if (v > max_seen)
					max_seen = v;
			}
		} else if (is_open(o)) {
			open += by;
		}
	}
	for (size_t i = 0; i < nseen; i++)
		for (size_t j = i + 1; j < nseen; j++)
			if (seen[i] == seen[j]) {
				res->failures++;
				say(res, "FAIL (d) counter %s: two acknowledged incr "
				    "answered %" PRId64 " (a lost or double increment)\n\n",
				    k->key, seen[i]);
				i = nseen;
				break;
			}
	for (int d = 0; d < ndumps; d++) {
		const struct dump_entry *de = dump_find(dumps[d], k->key);
		int64_t f = de ? strtoll(de->value, NULL, 10) : 0;

		if (f < acked || f > acked + open || f < max_seen) {
			res->failures++;
			say(res, "FAIL (d) counter %s on %s: final value %" PRId64
			    ", acknowledged increments %ld, attempted %ld, highest "
			    "acknowledged answer %" PRId64 "\n\n", k->key,
			    dumps[d]->name, f, acked, acked + open, max_seen);
		}
	}
	free(seen);
}

/* (e): every member holds the same keys, versions and values. */
static void check_converged(struct ckc_dump *const *dumps, int ndumps,
			    struct ckc_result *res)
{
	for (int d = 1; d < ndumps; d++) {
		const struct ckc_dump *a = dumps[0], *b = dumps[d];
		size_t i = 0, j = 0;
		int shown = 0, diffs = 0;

		while (i < a->n || j < b->n) {
			int c = i >= a->n ? 1 : j >= b->n ? -1 :
				strcmp(a->e[i].key, b->e[j].key);

			if (c == 0 && a->e[i].ver == b->e[j].ver &&
			    strcmp(a->e[i].value, b->e[j].value) == 0) {
				i++;
				j++;
				continue;
			}
			if (diffs++ == 0) {
				res->failures++;
				say(res, "FAIL (e) %s and %s did not converge:\n",
				    a->name, b->name);
			}
			if (shown++ < 10) {
				if (c <= 0)
					say(res, "    %s: K %s %" PRIu64 " %s\n", a->name,
					    a->e[i].key, a->e[i].ver, a->e[i].value);
				if (c >= 0)
					say(res, "    %s: K %s %" PRIu64 " %s\n", b->name,
					    b->e[j].key, b->e[j].ver, b->e[j].value);
			}
			if (c <= 0)
				i++;
			if (c >= 0)
				j++;
		}
		if (diffs)
			say(res, "    (%d keys differ)\n\n", diffs);
	}
}

int ckc_check(const struct ckc_history *h, struct ckc_dump *const *dumps,
	      int ndumps, const struct ckc_opts *opts, struct ckc_result *res)
{
	struct ckc_opts o = { CKC_DEFAULT_STEP_LIMIT, 40 };
	struct keyset ks = { 0 };
	char **owned = NULL;
	size_t nowned = 0;

	memset(res, 0, sizeof(*res));
	if (opts && opts->step_limit > 0)
		o.step_limit = opts->step_limit;
	if (opts && opts->max_excerpt > 0)
		o.max_excerpt = opts->max_excerpt;
	for (size_t i = 0; i < h->n; i++) {
		res->ops++;
		if (is_2xx(&h->ops[i]))
			res->acked++;
		else if (is_open(&h->ops[i]))
			res->indeterminate++;
		else if (h->ops[i].outcome == OC_FAIL)
			res->failed++;
		else if (h->ops[i].outcome == OC_STALE)
			res->stale++;
	}
	build_keys(h, &ks, &owned, &nowned);
	for (int d = 0; d < ndumps; d++)
		for (size_t i = 0; i < dumps[d]->n; i++) {
			int known = 0;

			for (size_t k = 0; k < ks.n && !known; k++)
				known = strcmp(ks.k[k].key, dumps[d]->e[i].key) == 0;
			if (!known) {
				res->failures++;
				say(res, "FAIL (a) %s holds key %s, which no operation "
				    "wrote\n\n", dumps[d]->name, dumps[d]->e[i].key);
			}
		}
	for (size_t i = 0; i < ks.n; i++) {
		struct keyhist *k = &ks.k[i];

		if (k->counter) {
			check_counter(k, h, dumps, ndumps, res);
			continue;
		}
		for (int d = 0; d < ndumps; d++)
			check_lost(k, dumps[d], res);
		check_linear(k, dumps, ndumps, h->t_max, &o, res);
	}
	check_versions(&ks, h, dumps, ndumps, res);
	check_converged(dumps, ndumps, res);
	say(res, "checked %ld ops (%ld acknowledged, %ld indeterminate, %ld "
	    "failed, %ld replica reads) on %zu keys and %d members: %d failures, "
	    "%d unknown\n", res->ops, res->acked, res->indeterminate,
	    res->failed, res->stale, ks.n, ndumps,
	    res->failures, res->unknown);
	keyset_free(&ks);
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	return 0;
}

void ckc_result_free(struct ckc_result *res)
{
	free(res->report);
	memset(res, 0, sizeof(*res));
}

/* ==== outages ================================================================ */

static int is_write(const struct ckc_op *o)
{
	return o->kind != OP_GET;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

void ckc_outages(const struct ckc_history *h, const int64_t *fault_ns,
		 int nfaults, int64_t end_ns, int64_t *outage_ns, int *censored)
{
	int64_t *done = calloc(h->n + 1, sizeof(*done));
	size_t nd = 0, j = 0;

	if (!done)
		abort();
	for (size_t i = 0; i < h->n; i++)
		if (is_write(&h->ops[i]) && is_2xx(&h->ops[i]))
			done[nd++] = h->ops[i].t_ret;
	if (nd)
		qsort(done, nd, sizeof(*done), cmp_i64);
	for (int f = 0; f < nfaults; f++) {
		int64_t from = fault_ns[f], last = from, gap = 0;
		int64_t until = f + 1 < nfaults ? fault_ns[f + 1] : end_ns;

		while (j < nd && done[j] < from)
			j++;
		for (; j < nd && done[j] < until; j++) {
			if (done[j] - last > gap)
				gap = done[j] - last;
			last = done[j];
		}
		/* No write after the last one: the outage runs to the end. */
		censored[f] = until - last > gap;
		outage_ns[f] = censored[f] ? until - last : gap;
		if (last == from)
			censored[f] = 1;
	}
	free(done);
}
