/*
 * tokenizer.c - Whisper's byte-level BPE (tokenizer.h), matching tiktoken.
 *
 * Encoding: a hand-written equivalent of the GPT-2 pre-split pattern cuts the
 * text into pieces; a piece that is itself a token maps to it directly,
 * otherwise its bytes are merged pairwise, always the adjacent pair whose
 * concatenation has the lowest rank (id), leftmost first. The merge loop uses
 * a min-heap with lazy invalidation, O(n log n) per piece, so a megabyte
 * without spaces cannot stall a worker. No regex library, no special-token
 * parsing in text ("<|endoftext|>" typed by a user is ordinary text).
 */
#include "whisper/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "whisper/lang.h"

struct tok_slot {
    uint32_t off, len; /* key bytes in t->blob */
    int32_t id;        /* -1: empty */
};

struct tokenizer {
    struct whisper_special_tokens sp;
    int32_t n_vocab;
    int32_t n_text;       /* text tokens are ids < n_text (= eot) */
    uint8_t *blob;        /* bytes of every text token */
    uint32_t *off, *len;  /* per id into blob */
    struct tok_slot *map; /* bytes -> lowest id, open addressing */
    uint32_t map_mask;
    uint32_t max_token_len;
    int32_t byte_id[256]; /* single byte -> its token */
};

/* ---- the 256 byte tokens (GPT-2's bytes_to_unicode order) ---- */

/* Byte of token id 0..255: printable ranges first, then the rest in increasing order. */
static void tok_byte_order(uint8_t byte_of_id[256])
{
    int id = 0;
    int used[256] = {0};
    for (int b = 0x21; b <= 0x7E; b++)
        used[b] = 1, byte_of_id[id++] = (uint8_t)b;
    for (int b = 0xA1; b <= 0xAC; b++)
        used[b] = 1, byte_of_id[id++] = (uint8_t)b;
    for (int b = 0xAE; b <= 0xFF; b++)
        used[b] = 1, byte_of_id[id++] = (uint8_t)b;
    for (int b = 0; b < 256; b++)
        if (!used[b])
            byte_of_id[id++] = (uint8_t)b;
}

/* ---- hash map: token bytes -> id ---- */

static uint32_t tok_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int32_t tok_lookup(const struct tokenizer *t, const uint8_t *p, size_t n)
{
    if (n == 0 || n > t->max_token_len)
        return -1;
    for (uint32_t i = tok_hash(p, n) & t->map_mask;; i = (i + 1) & t->map_mask) {
        const struct tok_slot *s = &t->map[i];
        if (s->id < 0)
            return -1;
        if (s->len == n && memcmp(t->blob + s->off, p, n) == 0)
            return s->id;
    }
}

/* Inserts id unless its bytes are already present (ids arrive in increasing order). */
static void tok_insert(struct tokenizer *t, int32_t id)
{
    const uint8_t *p = t->blob + t->off[id];
    uint32_t n = t->len[id];
    for (uint32_t i = tok_hash(p, n) & t->map_mask;; i = (i + 1) & t->map_mask) {
        struct tok_slot *s = &t->map[i];
        if (s->id < 0) {
            *s = (struct tok_slot){.off = t->off[id], .len = n, .id = id};
            if (n > t->max_token_len)
                t->max_token_len = n;
            return;
        }
        if (s->len == n && memcmp(t->blob + s->off, p, n) == 0)
            return;
    }
}

static int tok_has_replacement_char(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 3 <= n; i++)
        if (p[i] == 0xEF && p[i + 1] == 0xBF && p[i + 2] == 0xBD)
            return 1;
    return 0;
}

/* Copies the text tokens into one blob, forcing ids 0..255 to the byte tokens. */
static enum sd_err tok_copy_vocab(struct tokenizer *t, const struct whisper_vocab *v, int *lossy,
                                  struct sd_error *err)
{
    uint8_t byte_of_id[256];
    tok_byte_order(byte_of_id);
    size_t total = 0;
    for (int32_t id = 0; id < t->n_text; id++)
        total += id < 256 ? 1 : (id < v->n_file_tokens ? v->len[id] : 0);
    if (total > UINT32_MAX)
        return sd_fail(err, SD_EFORMAT, "vocabulary is implausibly large (%zu bytes)", total);
    t->blob = malloc(total ? total : 1);
    t->off = malloc(sizeof(uint32_t) * (size_t)t->n_text);
    t->len = malloc(sizeof(uint32_t) * (size_t)t->n_text);
    if (!t->blob || !t->off || !t->len)
        return sd_fail(err, SD_ENOMEM, "out of memory copying the vocabulary");
    *lossy = 0;
    uint32_t pos = 0;
    for (int32_t id = 0; id < t->n_text; id++) {
        const uint8_t *src = id < v->n_file_tokens ? v->bytes[id] : NULL;
        uint32_t n = id < v->n_file_tokens ? v->len[id] : 0;
        t->off[id] = pos;
        if (id < 256) {
            if (n != 1 || src[0] != byte_of_id[id])
                *lossy = 1; /* e.g. high bytes stored as U+FFFD */
            t->blob[pos] = byte_of_id[id];
            t->byte_id[byte_of_id[id]] = id;
            n = 1;
        } else if (n) {
            memcpy(t->blob + pos, src, n);
        }
        t->len[id] = n;
        pos += n;
    }
    return SD_OK;
}

enum sd_err tok_create(const struct whisper_vocab *vocab, const struct whisper_special_tokens *sp,
                       int32_t n_vocab, struct tokenizer **out, struct sd_error *err)
{
    if (!vocab || !sp || !out || (vocab->n_file_tokens > 0 && (!vocab->bytes || !vocab->len)))
        return sd_fail(err, SD_EINVAL, "tok_create: missing vocabulary or special tokens");
    if (sp->eot < 256 || sp->eot > n_vocab || n_vocab > (1 << 24))
        return sd_fail(err, SD_EFORMAT, "vocabulary of %d tokens with eot %d is not Whisper's",
                       (int)n_vocab, (int)sp->eot);
    for (int32_t i = 0; i < vocab->n_file_tokens && i < sp->eot; i++)
        if (vocab->len[i] > 0 && !vocab->bytes[i])
            return sd_fail(err, SD_EFORMAT, "vocabulary token %d has no bytes", (int)i);

    struct tokenizer *t = calloc(1, sizeof(*t));
    if (!t)
        return sd_fail(err, SD_ENOMEM, "out of memory creating the tokenizer");
    t->sp = *sp;
    t->n_vocab = n_vocab;
    t->n_text = sp->eot;
    int lossy = 0;
    enum sd_err rc = tok_copy_vocab(t, vocab, &lossy, err);
    if (rc != SD_OK)
        goto fail;
    uint32_t cap = 1;
    while (cap < 2u * (uint32_t)t->n_text)
        cap <<= 1;
    t->map = malloc(sizeof(*t->map) * cap);
    if (!t->map) {
        rc = sd_fail(err, SD_ENOMEM, "out of memory creating the tokenizer");
        goto fail;
    }
    for (uint32_t i = 0; i < cap; i++)
        t->map[i].id = -1;
    t->map_mask = cap - 1;
    for (int32_t id = 0; id < t->n_text; id++) {
        if (t->len[id] == 0)
            continue;
        if (lossy && id >= 256 && tok_has_replacement_char(t->blob + t->off[id], t->len[id]))
            continue; /* its real bytes are unknown: never emit it */
        tok_insert(t, id);
    }
    *out = t;
    return SD_OK;
fail:
    tok_destroy(t);
    return rc;
}

void tok_destroy(struct tokenizer *t)
{
    if (!t)
        return;
    free(t->blob);
    free(t->off);
    free(t->len);
    free(t->map);
    free(t);
}

/* ---- character classes for the pre-split ---- */

enum tok_class { TC_LETTER, TC_NUMBER, TC_SPACE, TC_OTHER };

struct tok_range {
    uint32_t lo, hi;
};

/*
 * Non-ASCII classes. Sorted, disjoint ranges; what none of them (nor the
 * Indic rule) covers is a letter. Approximate outside the common scripts.
 */
static const struct tok_range tok_space_ranges[] = {
    {0x85, 0x85}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A}, {0x2028, 0x2029},
    {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};

static const struct tok_range tok_number_ranges[] = {
    {0xB2, 0xB3}, {0xB9, 0xB9}, {0xBC, 0xBE}, {0x660, 0x669}, {0x6F0, 0x6F9}, {0x7C0, 0x7C9},
    {0xDE6, 0xDEF}, {0xE50, 0xE59}, {0xED0, 0xED9}, {0xF20, 0xF33}, {0x1040, 0x1049},
    {0x1090, 0x1099}, {0x1369, 0x137C}, {0x16EE, 0x16F0}, {0x17E0, 0x17E9}, {0x17F0, 0x17F9},
    {0x1810, 0x1819}, {0x1946, 0x194F}, {0x19D0, 0x19DA}, {0x1A80, 0x1A99}, {0x1B50, 0x1B59},
    {0x1BB0, 0x1BB9}, {0x1C40, 0x1C49}, {0x1C50, 0x1C59}, {0x2070, 0x2070}, {0x2074, 0x2079},
    {0x2080, 0x2089}, {0x2150, 0x2182}, {0x2185, 0x2189}, {0x2460, 0x249B}, {0x24EA, 0x24FF},
    {0x2776, 0x2793}, {0x2CFD, 0x2CFD}, {0x3007, 0x3007}, {0x3021, 0x3029}, {0x3038, 0x303A},
    {0x3192, 0x3195}, {0x3220, 0x3229}, {0x3248, 0x324F}, {0x3251, 0x325F}, {0x3280, 0x3289},
    {0x32B1, 0x32BF}, {0xA620, 0xA629}, {0xA6E6, 0xA6EF}, {0xA830, 0xA835}, {0xA8D0, 0xA8D9},
    {0xA900, 0xA909}, {0xA9D0, 0xA9D9}, {0xA9F0, 0xA9F9}, {0xAA50, 0xAA59}, {0xABF0, 0xABF9},
    {0xFF10, 0xFF19}, {0x10107, 0x10133}, {0x1D7CE, 0x1D7FF}, {0x1F100, 0x1F10C},
};

/* Controls, punctuation, symbols, combining marks, private use. */
static const struct tok_range tok_other_ranges[] = {
    {0x80, 0x84}, {0x86, 0x9F}, {0xA1, 0xA9}, {0xAB, 0xB1}, {0xB4, 0xB4}, {0xB6, 0xB8},
    {0xBB, 0xBB}, {0xBF, 0xBF}, {0xD7, 0xD7}, {0xF7, 0xF7}, {0x2C2, 0x2C5}, {0x2D2, 0x2DF},
    {0x2E5, 0x2EB}, {0x2ED, 0x2ED}, {0x2EF, 0x36F}, {0x375, 0x375}, {0x37E, 0x37E},
    {0x384, 0x385}, {0x387, 0x387}, {0x3F6, 0x3F6}, {0x482, 0x489}, {0x55A, 0x55F},
    {0x589, 0x58A}, {0x58D, 0x58F}, {0x591, 0x5C7}, {0x5F3, 0x5F4}, {0x600, 0x61F},
    {0x64B, 0x65F}, {0x66A, 0x66D}, {0x670, 0x670}, {0x6D4, 0x6D4}, {0x6D6, 0x6ED},
    {0x6FD, 0x6FE}, {0xDCA, 0xDDF}, {0xDF2, 0xDF4}, {0xE31, 0xE31}, {0xE34, 0xE3A},
    {0xE3F, 0xE3F}, {0xE47, 0xE4F}, {0xE5A, 0xE5B}, {0xEB1, 0xEB1}, {0xEB4, 0xEBC},
    {0xEC8, 0xECE}, {0xF01, 0xF1F}, {0xF34, 0xF3F}, {0xF71, 0xF87}, {0xF8D, 0xFBC},
    {0xFBE, 0xFDA}, {0x102B, 0x103E}, {0x104A, 0x104F}, {0x1056, 0x1059}, {0x105E, 0x1060},
    {0x1062, 0x1064}, {0x1067, 0x106D}, {0x1071, 0x1074}, {0x1082, 0x108D}, {0x108F, 0x108F},
    {0x109A, 0x109F}, {0x10FB, 0x10FB}, {0x1360, 0x1368}, {0x17B4, 0x17D6}, {0x17D8, 0x17DB},
    {0x17DD, 0x17DD}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x2010, 0x2027}, {0x2030, 0x205E},
    {0x2060, 0x206F}, {0x20A0, 0x20FF}, {0x2100, 0x2101}, {0x2103, 0x2106}, {0x2108, 0x2109},
    {0x2114, 0x2114}, {0x2116, 0x2118}, {0x211E, 0x2123}, {0x2125, 0x2125}, {0x2127, 0x2127},
    {0x2129, 0x2129}, {0x212E, 0x212E}, {0x213A, 0x213B}, {0x2140, 0x2144}, {0x214A, 0x214D},
    {0x214F, 0x214F}, {0x218A, 0x245F}, {0x249C, 0x24E9}, {0x2500, 0x2775}, {0x2794, 0x2BFF},
    {0x2CE5, 0x2CEA}, {0x2CEF, 0x2CF1}, {0x2CF9, 0x2CFC}, {0x2CFE, 0x2CFF}, {0x2E00, 0x2E7F},
    {0x2FF0, 0x2FFF}, {0x3001, 0x3004}, {0x3008, 0x3020}, {0x302A, 0x3030}, {0x3036, 0x3037},
    {0x303D, 0x303F}, {0x3099, 0x309C}, {0x30A0, 0x30A0}, {0x30FB, 0x30FB}, {0x3190, 0x3191},
    {0x3196, 0x319F}, {0x31C0, 0x31E3}, {0x3200, 0x321E}, {0x322A, 0x3247}, {0x3250, 0x3250},
    {0x3260, 0x327F}, {0x328A, 0x32B0}, {0x32C0, 0x33FF}, {0x4DC0, 0x4DFF}, {0xA490, 0xA4C6},
    {0xA4FE, 0xA4FF}, {0xA60D, 0xA60F}, {0xA66F, 0xA67E}, {0xA6F0, 0xA6F7}, {0xA700, 0xA716},
    {0xA720, 0xA721}, {0xA789, 0xA78A}, {0xA802, 0xA802}, {0xA806, 0xA806}, {0xA80B, 0xA80B},
    {0xA823, 0xA82B}, {0xA836, 0xA839}, {0xA874, 0xA877}, {0xA880, 0xA881}, {0xA8B4, 0xA8C5},
    {0xA8CE, 0xA8CF}, {0xD800, 0xF8FF}, {0xFB1E, 0xFB1E}, {0xFB29, 0xFB29}, {0xFD3E, 0xFD3F},
    {0xFDFC, 0xFDFD}, {0xFE00, 0xFE6B}, {0xFEFF, 0xFEFF}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF20},
    {0xFF3B, 0xFF40}, {0xFF5B, 0xFF65}, {0xFFE0, 0xFFEE}, {0xFFF9, 0xFFFD}, {0x1D100, 0x1D1FF},
    {0x1F000, 0x1F0FF}, {0x1F10D, 0x1FAFF}, {0xE0000, 0xE01EF}, {0xF0000, 0x10FFFF},
};

static int tok_in_ranges(uint32_t cp, const struct tok_range *r, size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* Indic blocks U+0900..U+0D7F share the ISCII layout: signs, marks and digits at fixed offsets. */
static enum tok_class tok_indic_class(uint32_t cp)
{
    uint32_t o = cp & 0x7F;
    if (o >= 0x66 && o <= 0x6F)
        return TC_NUMBER;
    if (o <= 0x03 || o == 0x3C || (o >= 0x3E && o <= 0x4F) || (o >= 0x51 && o <= 0x57) ||
        (o >= 0x62 && o <= 0x65) || o == 0x70)
        return TC_OTHER; /* vowel signs, virama, nukta, dandas */
    return TC_LETTER;
}

static enum tok_class tok_class_of(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
            return TC_LETTER;
        if (cp >= '0' && cp <= '9')
            return TC_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D))
            return TC_SPACE;
        return TC_OTHER;
    }
    if (tok_in_ranges(cp, tok_space_ranges, sizeof(tok_space_ranges) / sizeof(tok_space_ranges[0])))
        return TC_SPACE;
    if (tok_in_ranges(cp, tok_number_ranges,
                      sizeof(tok_number_ranges) / sizeof(tok_number_ranges[0])))
        return TC_NUMBER;
    if (cp >= 0x0900 && cp < 0x0D80)
        return tok_indic_class(cp);
    if (tok_in_ranges(cp, tok_other_ranges, sizeof(tok_other_ranges) / sizeof(tok_other_ranges[0])))
        return TC_OTHER;
    return TC_LETTER;
}

/* Length of the valid UTF-8 character at s[0..n), or 0 if it is not one; *cp gets it. */
static size_t tok_utf8_char(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Class and byte length of the character at p (an invalid byte is one OTHER character). */
static enum tok_class tok_char_at(const uint8_t *s, size_t n, size_t p, size_t *clen)
{
    uint32_t cp = 0;
    size_t len = tok_utf8_char(s + p, n - p, &cp);
    if (len == 0) {
        *clen = 1;
        return TC_OTHER;
    }
    *clen = len;
    return tok_class_of(cp);
}

/* End of the run of characters of class c starting at p; *last gets the last one's start. */
static size_t tok_run_end(const uint8_t *s, size_t n, size_t p, enum tok_class c, size_t *last)
{
    size_t clen;
    *last = p;
    while (p < n && tok_char_at(s, n, p, &clen) == c) {
        *last = p;
        p += clen;
    }
    return p;
}

/*
 * End of the pre-split piece starting at p, following
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * alternative by alternative, the first that matches wins.
 */
static size_t tok_piece_end(const uint8_t *s, size_t n, size_t p)
{
    size_t clen, last;
    if (s[p] == '\'' && p + 1 < n) {
        uint8_t a = s[p + 1], b = p + 2 < n ? s[p + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd')
            return p + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return p + 3;
    }
    if (s[p] == ' ' && p + 1 < n) {
        enum tok_class c = tok_char_at(s, n, p + 1, &clen);
        if (c != TC_SPACE)
            return tok_run_end(s, n, p + 1, c, &last);
    }
    enum tok_class c0 = tok_char_at(s, n, p, &clen);
    if (c0 != TC_SPACE)
        return tok_run_end(s, n, p, c0, &last);
    size_t q = tok_run_end(s, n, p, TC_SPACE, &last);
    if (q == n || last == p)
        return q;     /* to the end, or a single space before a non-space */
    return last;      /* leave the last space to prefix the next word */
}

/* ---- BPE within one piece ---- */

struct tok_pair {
    int32_t rank;
    uint32_t pos;        /* start of the left part */
    uint32_t ver_l, ver_r;
};

struct tok_bpe {
    uint32_t *end, *next, *prev, *ver;
    int32_t *id;
    struct tok_pair *heap;
    size_t n_heap;
};

static int tok_pair_less(const struct tok_pair *a, const struct tok_pair *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void tok_heap_push(struct tok_bpe *w, struct tok_pair e)
{
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!tok_pair_less(&e, &w->heap[parent]))
            break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = e;
}

static struct tok_pair tok_heap_pop(struct tok_bpe *w)
{
    struct tok_pair top = w->heap[0], e = w->heap[--w->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->n_heap)
            break;
        if (c + 1 < w->n_heap && tok_pair_less(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!tok_pair_less(&w->heap[c], &e))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->n_heap)
        w->heap[i] = e;
    return top;
}

/* Queues the pair (l, next[l]) if its concatenation is a token. */
static void tok_queue_pair(const struct tokenizer *t, struct tok_bpe *w, const uint8_t *s,
                           uint32_t l, uint32_t n)
{
    uint32_t r = w->next[l];
    if (r >= n)
        return;
    int32_t rank = tok_lookup(t, s + l, w->end[r] - l);
    if (rank >= 0)
        tok_heap_push(w, (struct tok_pair){rank, l, w->ver[l], w->ver[r]});
}

/* Merges the bytes s[0..n) and appends the ids to out. */
static void tok_bpe_piece(const struct tokenizer *t, struct tok_bpe *w, const uint8_t *s,
                          uint32_t n, int32_t *out, int *n_out)
{
    w->n_heap = 0;
    for (uint32_t i = 0; i < n; i++) {
        w->end[i] = i + 1;
        w->next[i] = i + 1;
        w->prev[i] = i ? i - 1 : UINT32_MAX;
        w->ver[i] = 0;
        w->id[i] = t->byte_id[s[i]];
    }
    for (uint32_t i = 0; i + 1 < n; i++)
        tok_queue_pair(t, w, s, i, n);
    while (w->n_heap) {
        struct tok_pair e = tok_heap_pop(w);
        uint32_t l = e.pos, r = w->next[l];
        if (w->ver[l] != e.ver_l || r >= n || w->ver[r] != e.ver_r)
            continue; /* stale: one side changed since this pair was queued */
        w->end[l] = w->end[r];
        w->next[l] = w->next[r];
        if (w->next[r] < n)
            w->prev[w->next[r]] = l;
        w->id[l] = e.rank;
        w->ver[l]++;
        w->ver[r] = UINT32_MAX; /* dead */
        if (w->prev[l] != UINT32_MAX)
            tok_queue_pair(t, w, s, w->prev[l], n);
        tok_queue_pair(t, w, s, l, n);
    }
    for (uint32_t i = 0; i < n; i = w->next[i])
        out[(*n_out)++] = w->id[i];
}

enum sd_err tok_encode(const struct tokenizer *t, const char *text, size_t len, int32_t **out,
                       int *n_out, struct sd_error *err)
{
    if (!t || !out || !n_out || (len && !text))
        return sd_fail(err, SD_EINVAL, "tok_encode: missing tokenizer, text or output");
    if (len > (size_t)1 << 30)
        return sd_fail(err, SD_ETOOBIG, "text of %zu bytes is too long to tokenize", len);
    const uint8_t *s = (const uint8_t *)text;
    struct tok_bpe w = {0};
    int32_t *ids = malloc(sizeof(int32_t) * (len ? len : 1)); /* at most one id per byte */
    size_t max_piece = 0;
    for (size_t p = 0; p < len;) {
        size_t q = tok_piece_end(s, len, p);
        max_piece = q - p > max_piece ? q - p : max_piece;
        p = q;
    }
    w.end = malloc(sizeof(uint32_t) * (max_piece + 1));
    w.next = malloc(sizeof(uint32_t) * (max_piece + 1));
    w.prev = malloc(sizeof(uint32_t) * (max_piece + 1));
    w.ver = malloc(sizeof(uint32_t) * (max_piece + 1));
    w.id = malloc(sizeof(int32_t) * (max_piece + 1));
    w.heap = malloc(sizeof(struct tok_pair) * (3 * max_piece + 1)); /* n-1 + 2 per merge */
    enum sd_err rc = SD_OK;
    if (!ids || !w.end || !w.next || !w.prev || !w.ver || !w.id || !w.heap) {
        rc = sd_fail(err, SD_ENOMEM, "out of memory tokenizing %zu bytes", len);
        goto done;
    }
    int n = 0;
    for (size_t p = 0; p < len;) {
        size_t q = tok_piece_end(s, len, p);
        int32_t whole = tok_lookup(t, s + p, q - p);
        if (whole >= 0)
            ids[n++] = whole;
        else
            tok_bpe_piece(t, &w, s + p, (uint32_t)(q - p), ids, &n);
        p = q;
    }
    *out = ids;
    *n_out = n;
    ids = NULL;
done:
    free(ids);
    free(w.end);
    free(w.next);
    free(w.prev);
    free(w.ver);
    free(w.id);
    free(w.heap);
    return rc;
}

/* ---- decoding and special tokens ---- */

const uint8_t *tok_bytes(const struct tokenizer *t, int32_t id, size_t *len)
{
    if (!t || id < 0 || id >= t->n_text) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = t->len[id];
    return t->blob + t->off[id];
}

char *tok_decode(const struct tokenizer *t, const int32_t *ids, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < t->n_text)
            total += t->len[ids[i]];
    char *s = malloc(total + 1);
    if (!s)
        return NULL;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_text)
            continue;
        memcpy(s + pos, t->blob + t->off[ids[i]], t->len[ids[i]]);
        pos += t->len[ids[i]];
    }
    s[pos] = 0;
    return s;
}

const char *tok_language_code(const struct tokenizer *t, int32_t id)
{
    int32_t i = id - t->sp.lang_first;
    return i >= 0 && i < t->sp.n_langs ? whisper_lang_code(i) : NULL;
}

int32_t tok_language_id(const struct tokenizer *t, const char *code)
{
    int i = whisper_lang_index(code);
    return i >= 0 && i < t->sp.n_langs ? t->sp.lang_first + i : -1;
}

int tok_n_languages(const struct tokenizer *t)
{
    return t->sp.n_langs;
}

const struct whisper_special_tokens *tok_special(const struct tokenizer *t)
{
    return &t->sp;
}

int32_t tok_n_text(const struct tokenizer *t)
{
    return t->n_text;
}

int tok_special_name(const struct tokenizer *t, int32_t id, char *buf, size_t buf_len)
{
    const struct whisper_special_tokens *sp = &t->sp;
    const char *fixed = NULL;
    if (buf_len)
        buf[0] = 0;
    if (id < t->n_text || id < 0 || id >= t->n_vocab)
        return 0;
    if (id == sp->eot)
        fixed = "<|endoftext|>";
    else if (id == sp->sot)
        fixed = "<|startoftranscript|>";
    else if (id == sp->translate)
        fixed = "<|translate|>";
    else if (id == sp->transcribe)
        fixed = "<|transcribe|>";
    else if (id == sp->solm)
        fixed = "<|startoflm|>";
    else if (id == sp->prev)
        fixed = "<|startofprev|>";
    else if (id == sp->nosp)
        fixed = "<|nospeech|>";
    else if (id == sp->no_timestamps)
        fixed = "<|notimestamps|>";
    if (fixed)
        snprintf(buf, buf_len, "%s", fixed);
    else if (id >= sp->timestamp_begin)
        snprintf(buf, buf_len, "<|%.2f|>", (double)(id - sp->timestamp_begin) * 0.02);
    else if (id > sp->sot && id < sp->translate && whisper_lang_code(id - sp->sot - 1))
        snprintf(buf, buf_len, "<|%s|>", whisper_lang_code(id - sp->sot - 1));
    else
        snprintf(buf, buf_len, "<|special_%d|>", (int)id);
    return 1;
}
