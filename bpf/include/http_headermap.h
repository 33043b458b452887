/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading an `http::HeaderMap<HeaderValue>` (the http crate, 0.2 and 1.x)
 * from BPF, for the libraries whose probes see one: h2-server (request
 * headers, and the grpc-status of a trailers-only response), tonic-server
 * (gRPC trailers) and h2-client (response heads and trailers). Include after
 * common.h.
 *
 *   HeaderMap { entries: Vec<Bucket<HeaderValue>>, .. }
 *   Bucket    { key: HeaderName, value: HeaderValue, .. }
 *   HeaderName(Repr<Custom>): Standard(StandardHeader) | Custom(Bytes)
 *   HeaderValue { inner: Bytes, .. }
 *   Bytes     { ptr, len, data, vtable }
 *
 * Every offset comes from the probe's config (struct probe_config), in a
 * block of HM_SLOTS slots starting at a base index the library chooses; the
 * agent fills it from the offsets database. Only the first value of each
 * name is in `entries` (extra values live elsewhere): for the headers read
 * here that is the one that counts. Reads are checked: a Vec whose length
 * exceeds its capacity, a Bytes longer than it may be, are bad layouts.
 */
#ifndef OTEL_RUST_AGENT_HTTP_HEADERMAP_H
#define OTEL_RUST_AGENT_HTTP_HEADERMAP_H

/* Config slots of a HeaderMap walk, relative to the block's base. */
#define HM_ENTRIES	0	/* HeaderMap.entries: a Vec */
#define HM_VEC_PTR	1	/* Vec.ptr */
#define HM_VEC_LEN	2	/* Vec.len */
#define HM_VEC_CAP	3	/* Vec.cap */
#define HM_BUCKET_SIZE	4	/* sizeof(Bucket<HeaderValue>) */
#define HM_BUCKET_KEY	5	/* Bucket.key (+ HeaderName.inner) */
#define HM_BUCKET_VALUE	6	/* Bucket.value + HeaderValue.inner: the value's Bytes */
#define HM_NAME_TAG	7	/* Repr<Custom> discriminant (8 bytes), inside the key */
#define HM_NAME_STD_TAG	8	/* the discriminant's value for Standard */
#define HM_NAME_STD	9	/* Standard's StandardHeader byte, inside the key */
#define HM_NAME_CUSTOM	10	/* Custom's Bytes, inside the key */
#define HM_BYTES_PTR	11	/* Bytes.ptr */
#define HM_BYTES_LEN	12	/* Bytes.len */
#define HM_BYTES_VTABLE	13	/* Bytes.vtable (never null in a Bytes: None of Option<Bytes>) */
#define HM_SLOTS	14

/* At most this many entries are looked at. */
#define HM_MAX_ENTRIES	24
/* A bucket is copied whole onto the stack; it is 104 bytes in http 1.x. */
#define HM_BUCKET_MAX	128

struct hm_bytes {
	__u64 ptr;
	__u64 len;
};

/* A Bytes at `addr`: 0 when present and sane, 1 when None (null vtable), -1 on a bad read. */
static __always_inline int hm_read_bytes(const struct probe_config *cfg, __u32 base, __u64 addr, struct hm_bytes *out)
{
	__u64 w[4] = {};
	if (bpf_probe_read_user(w, sizeof(w), (const void *)addr))
		return -1;
	__u32 pi = (__u32)CFG(cfg, base + HM_BYTES_PTR) / 8, li = (__u32)CFG(cfg, base + HM_BYTES_LEN) / 8,
	      vi = (__u32)CFG(cfg, base + HM_BYTES_VTABLE) / 8;
	if (w[vi & 3] == 0)
		return 1;
	out->ptr = w[pi & 3];
	out->len = w[li & 3];
	if (out->len > (1 << 20) || (out->len && !user_ptr_ok(out->ptr)))
		return -1;
	return 0;
}

/* The entries Vec of the map at `map`: pointer and length (capped at HM_MAX_ENTRIES). */
static __always_inline int hm_entries(const struct probe_config *cfg, __u32 base, __u64 map, __u64 *ptr, __u32 *n)
{
	__u64 w[4] = {};	/* a Vec is 3 words; w[3] stays 0 */
	if (bpf_probe_read_user(w, 24, (const void *)(map + CFG(cfg, base + HM_ENTRIES))))
		return -1;
	__u64 p = w[((__u32)CFG(cfg, base + HM_VEC_PTR) / 8) & 3];
	__u64 len = w[((__u32)CFG(cfg, base + HM_VEC_LEN) / 8) & 3];
	__u64 cap = w[((__u32)CFG(cfg, base + HM_VEC_CAP) / 8) & 3];
	if (len > cap || cap > 65536 || (len && !user_ptr_ok(p)))
		return -1;
	*ptr = p;
	*n = len > HM_MAX_ENTRIES ? HM_MAX_ENTRIES : (__u32)len;
	return 0;
}

/* One entry's name and value. std: the StandardHeader index, or -1 for a custom name (then name holds it). */
struct hm_entry {
	int std;
	struct hm_bytes name;
	struct hm_bytes value;
};

static __always_inline int hm_entry_at(const struct probe_config *cfg, __u32 base, __u64 entries, __u32 i, struct hm_entry *e)
{
	__u32 sz = (__u32)CFG(cfg, base + HM_BUCKET_SIZE);
	if (sz == 0 || sz > HM_BUCKET_MAX)
		return -1;
	__u64 b = entries + (__u64)i * sz;
	__u32 key = (__u32)CFG(cfg, base + HM_BUCKET_KEY);
	__u64 tag = read_user_u64(b + key + CFG(cfg, base + HM_NAME_TAG));
	if (tag == (__u64)(__s64)CFG(cfg, base + HM_NAME_STD_TAG)) {
		__u8 idx = 0;
		if (bpf_probe_read_user(&idx, 1, (const void *)(b + key + CFG(cfg, base + HM_NAME_STD))))
			return -1;
		e->std = idx;
	} else {
		e->std = -1;
		if (hm_read_bytes(cfg, base, b + key + CFG(cfg, base + HM_NAME_CUSTOM), &e->name))
			return -1;
	}
	if (hm_read_bytes(cfg, base, b + CFG(cfg, base + HM_BUCKET_VALUE), &e->value))
		return -1;
	return 0;
}

/* Whether a custom name is `lit` (lowercase, as h2 and http store them). */
static __always_inline int hm_name_is(const struct hm_bytes *name, const char *lit, __u32 n)
{
	if (name->len != n || n > 16)
		return 0;
	char buf[16] = {};
	if (bpf_probe_read_user(buf, n, (const void *)name->ptr))
		return 0;
#pragma unroll
	for (int i = 0; i < 16; i++)
		if (i < n && buf[i] != lit[i])
			return 0;
	return 1;
}

/* Copies a value into dst[cap] (cap a power of two); returns the length copied.
 * Two calls with sizes the verifier can bound on their own: the full cap, or
 * the length masked below it. */
static __always_inline __u16 hm_copy(void *dst, __u32 cap, const struct hm_bytes *v)
{
	if (v->len == 0)
		return 0;
	if (v->len >= cap)
		return bpf_probe_read_user(dst, cap, (const void *)v->ptr) ? 0 : (__u16)cap;
	__u32 n = (__u32)v->len & (cap - 1);
	return bpf_probe_read_user(dst, n, (const void *)v->ptr) ? 0 : (__u16)n;
}

/* grpc-status: its decimal value (0..999), -1 when it is not one. */
static __always_inline int hm_decimal(const struct hm_bytes *v)
{
	if (v->len == 0 || v->len > 3)
		return -1;
	char d[4] = {};
	if (bpf_probe_read_user(d, (__u32)v->len & 3, (const void *)v->ptr))
		return -1;
	int n = 0;
#pragma unroll
	for (int i = 0; i < 3; i++) {
		if (i >= v->len)
			break;
		if (d[i] < '0' || d[i] > '9')
			return -1;
		n = n * 10 + (d[i] - '0');
	}
	return n;
}

/*
 * grpc-status and grpc-message of a header map (gRPC trailers, or the head of
 * a trailers-only response), read by h2-client, h2-server and tonic-server:
 * *status stays as it was unless a grpc-status entry is found (then its
 * value, -1 if not a number); the message is copied into msg[cap] (cap a
 * power of two). Returns -1 on a bad layout.
 */
static __always_inline int hm_grpc_status(const struct probe_config *cfg, __u32 base, __u64 map,
					  __s16 *status, __u8 *msg, __u32 cap, __u16 *msg_len)
{
	__u64 entries;
	__u32 n;
	if (hm_entries(cfg, base, map, &entries, &n))
		return -1;
	for (__u32 i = 0; i < HM_MAX_ENTRIES; i++) {
		if (i >= n)
			break;
		struct hm_entry h = {};
		if (hm_entry_at(cfg, base, entries, i, &h))
			return -1;
		if (h.std >= 0)
			continue;
		if (h.name.len == 11 && hm_name_is(&h.name, "grpc-status", 11))
			*status = (__s16)hm_decimal(&h.value);
		else if (h.name.len == 12 && hm_name_is(&h.name, "grpc-message", 12))
			*msg_len = hm_copy(msg, cap, &h.value);
	}
	return 0;
}

#endif
