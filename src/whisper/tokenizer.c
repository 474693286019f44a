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
#include "util/utf8.h"

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

/*
 * Classes of the non-ASCII code points that are not letters: sorted disjoint
 * ranges, 'N' (\p{N}), 'S' (\s: Unicode White_Space), 'O' (everything else
 * that is not \p{L}: punctuation, symbols, marks, controls, private use).
 * Generated from Python's `regex` module (Unicode 16): for every code point
 * >= 0x80, \s / \p{L} / \p{N} / other, unassigned code points folded into the
 * preceding range to keep the table short. Code points in no range are letters.
 */
struct tok_range {
    uint32_t lo, hi;
    char cls;
};

static const struct tok_range tok_ranges[] = {
    {0x80, 0x84, 'O'}, {0x85, 0x85, 'S'}, {0x86, 0x9F, 'O'}, {0xA0, 0xA0, 'S'}, {0xA1, 0xA9, 'O'},
    {0xAB, 0xB1, 'O'}, {0xB2, 0xB3, 'N'}, {0xB4, 0xB4, 'O'}, {0xB6, 0xB8, 'O'}, {0xB9, 0xB9, 'N'},
    {0xBB, 0xBB, 'O'}, {0xBC, 0xBE, 'N'}, {0xBF, 0xBF, 'O'}, {0xD7, 0xD7, 'O'}, {0xF7, 0xF7, 'O'},
    {0x2C2, 0x2C5, 'O'}, {0x2D2, 0x2DF, 'O'}, {0x2E5, 0x2EB, 'O'}, {0x2ED, 0x2ED, 'O'},
    {0x2EF, 0x36F, 'O'}, {0x375, 0x375, 'O'}, {0x37E, 0x37E, 'O'}, {0x384, 0x385, 'O'},
    {0x387, 0x387, 'O'}, {0x3F6, 0x3F6, 'O'}, {0x482, 0x489, 'O'}, {0x55A, 0x55F, 'O'},
    {0x589, 0x5CF, 'O'}, {0x5F3, 0x61F, 'O'}, {0x64B, 0x65F, 'O'}, {0x660, 0x669, 'N'},
    {0x66A, 0x66D, 'O'}, {0x670, 0x670, 'O'}, {0x6D4, 0x6D4, 'O'}, {0x6D6, 0x6E4, 'O'},
    {0x6E7, 0x6ED, 'O'}, {0x6F0, 0x6F9, 'N'}, {0x6FD, 0x6FE, 'O'}, {0x700, 0x70F, 'O'},
    {0x711, 0x711, 'O'}, {0x730, 0x74C, 'O'}, {0x7A6, 0x7B0, 'O'}, {0x7C0, 0x7C9, 'N'},
    {0x7EB, 0x7F3, 'O'}, {0x7F6, 0x7F9, 'O'}, {0x7FD, 0x7FF, 'O'}, {0x816, 0x819, 'O'},
    {0x81B, 0x823, 'O'}, {0x825, 0x827, 'O'}, {0x829, 0x83F, 'O'}, {0x859, 0x85F, 'O'},
    {0x888, 0x888, 'O'}, {0x890, 0x89F, 'O'}, {0x8CA, 0x903, 'O'}, {0x93A, 0x93C, 'O'},
    {0x93E, 0x94F, 'O'}, {0x951, 0x957, 'O'}, {0x962, 0x965, 'O'}, {0x966, 0x96F, 'N'},
    {0x970, 0x970, 'O'}, {0x981, 0x984, 'O'}, {0x9BC, 0x9BC, 'O'}, {0x9BE, 0x9CD, 'O'},
    {0x9D7, 0x9DB, 'O'}, {0x9E2, 0x9E5, 'O'}, {0x9E6, 0x9EF, 'N'}, {0x9F2, 0x9F3, 'O'},
    {0x9F4, 0x9F9, 'N'}, {0x9FA, 0x9FB, 'O'}, {0x9FD, 0xA04, 'O'}, {0xA3C, 0xA58, 'O'},
    {0xA66, 0xA6F, 'N'}, {0xA70, 0xA71, 'O'}, {0xA75, 0xA84, 'O'}, {0xABC, 0xABC, 'O'},
    {0xABE, 0xACF, 'O'}, {0xAE2, 0xAE5, 'O'}, {0xAE6, 0xAEF, 'N'}, {0xAF0, 0xAF8, 'O'},
    {0xAFA, 0xB04, 'O'}, {0xB3C, 0xB3C, 'O'}, {0xB3E, 0xB5B, 'O'}, {0xB62, 0xB65, 'O'},
    {0xB66, 0xB6F, 'N'}, {0xB70, 0xB70, 'O'}, {0xB72, 0xB81, 'N'}, {0xB82, 0xB82, 'O'},
    {0xBBE, 0xBCF, 'O'}, {0xBD7, 0xBE5, 'O'}, {0xBE6, 0xBF2, 'N'}, {0xBF3, 0xC04, 'O'},
    {0xC3C, 0xC3C, 'O'}, {0xC3E, 0xC57, 'O'}, {0xC62, 0xC65, 'O'}, {0xC66, 0xC76, 'N'},
    {0xC77, 0xC77, 'O'}, {0xC78, 0xC7E, 'N'}, {0xC7F, 0xC7F, 'O'}, {0xC81, 0xC84, 'O'},
    {0xCBC, 0xCBC, 'O'}, {0xCBE, 0xCDB, 'O'}, {0xCE2, 0xCE5, 'O'}, {0xCE6, 0xCF0, 'N'},
    {0xD00, 0xD03, 'O'}, {0xD3B, 0xD3C, 'O'}, {0xD3E, 0xD4D, 'O'}, {0xD4F, 0xD53, 'O'},
    {0xD57, 0xD57, 'O'}, {0xD58, 0xD5E, 'N'}, {0xD62, 0xD65, 'O'}, {0xD66, 0xD78, 'N'},
    {0xD79, 0xD79, 'O'}, {0xD81, 0xD84, 'O'}, {0xDCA, 0xDE5, 'O'}, {0xDE6, 0xDF1, 'N'},
    {0xDF2, 0xE00, 'O'}, {0xE31, 0xE31, 'O'}, {0xE34, 0xE3F, 'O'}, {0xE47, 0xE4F, 'O'},
    {0xE50, 0xE59, 'N'}, {0xE5A, 0xE80, 'O'}, {0xEB1, 0xEB1, 'O'}, {0xEB4, 0xEBC, 'O'},
    {0xEC8, 0xECF, 'O'}, {0xED0, 0xEDB, 'N'}, {0xF01, 0xF1F, 'O'}, {0xF20, 0xF33, 'N'},
    {0xF34, 0xF3F, 'O'}, {0xF71, 0xF87, 'O'}, {0xF8D, 0xFFF, 'O'}, {0x102B, 0x103E, 'O'},
    {0x1040, 0x1049, 'N'}, {0x104A, 0x104F, 'O'}, {0x1056, 0x1059, 'O'}, {0x105E, 0x1060, 'O'},
    {0x1062, 0x1064, 'O'}, {0x1067, 0x106D, 'O'}, {0x1071, 0x1074, 'O'}, {0x1082, 0x108D, 'O'},
    {0x108F, 0x108F, 'O'}, {0x1090, 0x1099, 'N'}, {0x109A, 0x109F, 'O'}, {0x10FB, 0x10FB, 'O'},
    {0x135D, 0x1368, 'O'}, {0x1369, 0x137F, 'N'}, {0x1390, 0x139F, 'O'}, {0x1400, 0x1400, 'O'},
    {0x166D, 0x166E, 'O'}, {0x1680, 0x1680, 'S'}, {0x169B, 0x169F, 'O'}, {0x16EB, 0x16ED, 'O'},
    {0x16EE, 0x16F0, 'N'}, {0x1712, 0x171E, 'O'}, {0x1732, 0x173F, 'O'}, {0x1752, 0x175F, 'O'},
    {0x1772, 0x177F, 'O'}, {0x17B4, 0x17D6, 'O'}, {0x17D8, 0x17DB, 'O'}, {0x17DD, 0x17DF, 'O'},
    {0x17E0, 0x17FF, 'N'}, {0x1800, 0x180F, 'O'}, {0x1810, 0x181F, 'N'}, {0x1885, 0x1886, 'O'},
    {0x18A9, 0x18A9, 'O'}, {0x1920, 0x1945, 'O'}, {0x1946, 0x194F, 'N'}, {0x19D0, 0x19DD, 'N'},
    {0x19DE, 0x19FF, 'O'}, {0x1A17, 0x1A1F, 'O'}, {0x1A55, 0x1A7F, 'O'}, {0x1A80, 0x1A9F, 'N'},
    {0x1AA0, 0x1AA6, 'O'}, {0x1AA8, 0x1B04, 'O'}, {0x1B34, 0x1B44, 'O'}, {0x1B50, 0x1B59, 'N'},
    {0x1B5A, 0x1B82, 'O'}, {0x1BA1, 0x1BAD, 'O'}, {0x1BB0, 0x1BB9, 'N'}, {0x1BE6, 0x1BFF, 'O'},
    {0x1C24, 0x1C3F, 'O'}, {0x1C40, 0x1C4C, 'N'}, {0x1C50, 0x1C59, 'N'}, {0x1C7E, 0x1C7F, 'O'},
    {0x1CC0, 0x1CE8, 'O'}, {0x1CED, 0x1CED, 'O'}, {0x1CF4, 0x1CF4, 'O'}, {0x1CF7, 0x1CF9, 'O'},
    {0x1DC0, 0x1DFF, 'O'}, {0x1FBD, 0x1FBD, 'O'}, {0x1FBF, 0x1FC1, 'O'}, {0x1FCD, 0x1FCF, 'O'},
    {0x1FDD, 0x1FDF, 'O'}, {0x1FED, 0x1FF1, 'O'}, {0x1FFD, 0x1FFF, 'O'}, {0x2000, 0x200A, 'S'},
    {0x200B, 0x2027, 'O'}, {0x2028, 0x2029, 'S'}, {0x202A, 0x202E, 'O'}, {0x202F, 0x202F, 'S'},
    {0x2030, 0x205E, 'O'}, {0x205F, 0x205F, 'S'}, {0x2060, 0x206F, 'O'}, {0x2070, 0x2070, 'N'},
    {0x2074, 0x2079, 'N'}, {0x207A, 0x207E, 'O'}, {0x2080, 0x2089, 'N'}, {0x208A, 0x208F, 'O'},
    {0x20A0, 0x2101, 'O'}, {0x2103, 0x2106, 'O'}, {0x2108, 0x2109, 'O'}, {0x2114, 0x2114, 'O'},
    {0x2116, 0x2118, 'O'}, {0x211E, 0x2123, 'O'}, {0x2125, 0x2125, 'O'}, {0x2127, 0x2127, 'O'},
    {0x2129, 0x2129, 'O'}, {0x212E, 0x212E, 'O'}, {0x213A, 0x213B, 'O'}, {0x2140, 0x2144, 'O'},
    {0x214A, 0x214D, 'O'}, {0x214F, 0x214F, 'O'}, {0x2150, 0x2182, 'N'}, {0x2185, 0x2189, 'N'},
    {0x218A, 0x245F, 'O'}, {0x2460, 0x249B, 'N'}, {0x249C, 0x24E9, 'O'}, {0x24EA, 0x24FF, 'N'},
    {0x2500, 0x2775, 'O'}, {0x2776, 0x2793, 'N'}, {0x2794, 0x2BFF, 'O'}, {0x2CE5, 0x2CEA, 'O'},
    {0x2CEF, 0x2CF1, 'O'}, {0x2CF9, 0x2CFC, 'O'}, {0x2CFD, 0x2CFD, 'N'}, {0x2CFE, 0x2CFF, 'O'},
    {0x2D70, 0x2D7F, 'O'}, {0x2DE0, 0x2E2E, 'O'}, {0x2E30, 0x2FFF, 'O'}, {0x3000, 0x3000, 'S'},
    {0x3001, 0x3004, 'O'}, {0x3007, 0x3007, 'N'}, {0x3008, 0x3020, 'O'}, {0x3021, 0x3029, 'N'},
    {0x302A, 0x3030, 'O'}, {0x3036, 0x3037, 'O'}, {0x3038, 0x303A, 'N'}, {0x303D, 0x3040, 'O'},
    {0x3099, 0x309C, 'O'}, {0x30A0, 0x30A0, 'O'}, {0x30FB, 0x30FB, 'O'}, {0x3190, 0x3191, 'O'},
    {0x3192, 0x3195, 'N'}, {0x3196, 0x319F, 'O'}, {0x31C0, 0x31EF, 'O'}, {0x3200, 0x321F, 'O'},
    {0x3220, 0x3229, 'N'}, {0x322A, 0x3247, 'O'}, {0x3248, 0x324F, 'N'}, {0x3250, 0x3250, 'O'},
    {0x3251, 0x325F, 'N'}, {0x3260, 0x327F, 'O'}, {0x3280, 0x3289, 'N'}, {0x328A, 0x32B0, 'O'},
    {0x32B1, 0x32BF, 'N'}, {0x32C0, 0x33FF, 'O'}, {0x4DC0, 0x4DFF, 'O'}, {0xA490, 0xA4CF, 'O'},
    {0xA4FE, 0xA4FF, 'O'}, {0xA60D, 0xA60F, 'O'}, {0xA620, 0xA629, 'N'}, {0xA66F, 0xA67E, 'O'},
    {0xA69E, 0xA69F, 'O'}, {0xA6E6, 0xA6EF, 'N'}, {0xA6F0, 0xA716, 'O'}, {0xA720, 0xA721, 'O'},
    {0xA789, 0xA78A, 'O'}, {0xA802, 0xA802, 'O'}, {0xA806, 0xA806, 'O'}, {0xA80B, 0xA80B, 'O'},
    {0xA823, 0xA82F, 'O'}, {0xA830, 0xA835, 'N'}, {0xA836, 0xA83F, 'O'}, {0xA874, 0xA881, 'O'},
    {0xA8B4, 0xA8CF, 'O'}, {0xA8D0, 0xA8DF, 'N'}, {0xA8E0, 0xA8F1, 'O'}, {0xA8F8, 0xA8FA, 'O'},
    {0xA8FC, 0xA8FC, 'O'}, {0xA8FF, 0xA8FF, 'O'}, {0xA900, 0xA909, 'N'}, {0xA926, 0xA92F, 'O'},
    {0xA947, 0xA95F, 'O'}, {0xA980, 0xA983, 'O'}, {0xA9B3, 0xA9CE, 'O'}, {0xA9D0, 0xA9DD, 'N'},
    {0xA9DE, 0xA9DF, 'O'}, {0xA9E5, 0xA9E5, 'O'}, {0xA9F0, 0xA9F9, 'N'}, {0xAA29, 0xAA3F, 'O'},
    {0xAA43, 0xAA43, 'O'}, {0xAA4C, 0xAA4F, 'O'}, {0xAA50, 0xAA5B, 'N'}, {0xAA5C, 0xAA5F, 'O'},
    {0xAA77, 0xAA79, 'O'}, {0xAA7B, 0xAA7D, 'O'}, {0xAAB0, 0xAAB0, 'O'}, {0xAAB2, 0xAAB4, 'O'},
    {0xAAB7, 0xAAB8, 'O'}, {0xAABE, 0xAABF, 'O'}, {0xAAC1, 0xAAC1, 'O'}, {0xAADE, 0xAADF, 'O'},
    {0xAAEB, 0xAAF1, 'O'}, {0xAAF5, 0xAB00, 'O'}, {0xAB5B, 0xAB5B, 'O'}, {0xAB6A, 0xAB6F, 'O'},
    {0xABE3, 0xABEF, 'O'}, {0xABF0, 0xABFF, 'N'}, {0xD800, 0xF8FF, 'O'}, {0xFB1E, 0xFB1E, 'O'},
    {0xFB29, 0xFB29, 'O'}, {0xFBB2, 0xFBD2, 'O'}, {0xFD3E, 0xFD4F, 'O'}, {0xFDCF, 0xFDEF, 'O'},
    {0xFDFC, 0xFE6F, 'O'}, {0xFEFF, 0xFF0F, 'O'}, {0xFF10, 0xFF19, 'N'}, {0xFF1A, 0xFF20, 'O'},
    {0xFF3B, 0xFF40, 'O'}, {0xFF5B, 0xFF65, 'O'}, {0xFFE0, 0xFFFF, 'O'}, {0x10100, 0x10106, 'O'},
    {0x10107, 0x10136, 'N'}, {0x10137, 0x1013F, 'O'}, {0x10140, 0x10178, 'N'},
    {0x10179, 0x10189, 'O'}, {0x1018A, 0x1018B, 'N'}, {0x1018C, 0x1027F, 'O'},
    {0x102E0, 0x102E0, 'O'}, {0x102E1, 0x102FF, 'N'}, {0x10320, 0x1032C, 'N'},
    {0x10341, 0x10341, 'N'}, {0x1034A, 0x1034F, 'N'}, {0x10376, 0x1037F, 'O'},
    {0x1039F, 0x1039F, 'O'}, {0x103D0, 0x103D0, 'O'}, {0x103D1, 0x103FF, 'N'},
    {0x104A0, 0x104AF, 'N'}, {0x1056F, 0x1056F, 'O'}, {0x10857, 0x10857, 'O'},
    {0x10858, 0x1085F, 'N'}, {0x10877, 0x10878, 'O'}, {0x10879, 0x1087F, 'N'},
    {0x108A7, 0x108DF, 'N'}, {0x108FB, 0x108FF, 'N'}, {0x10916, 0x1091E, 'N'},
    {0x1091F, 0x1091F, 'O'}, {0x1093F, 0x1093F, 'O'}, {0x109BC, 0x109BD, 'N'},
    {0x109C0, 0x109FF, 'N'}, {0x10A01, 0x10A0F, 'O'}, {0x10A38, 0x10A3F, 'O'},
    {0x10A40, 0x10A4F, 'N'}, {0x10A50, 0x10A5F, 'O'}, {0x10A7D, 0x10A7E, 'N'},
    {0x10A7F, 0x10A7F, 'O'}, {0x10A9D, 0x10ABF, 'N'}, {0x10AC8, 0x10AC8, 'O'},
    {0x10AE5, 0x10AEA, 'O'}, {0x10AEB, 0x10AEF, 'N'}, {0x10AF0, 0x10AFF, 'O'},
    {0x10B39, 0x10B3F, 'O'}, {0x10B58, 0x10B5F, 'N'}, {0x10B78, 0x10B7F, 'N'},
    {0x10B99, 0x10BA8, 'O'}, {0x10BA9, 0x10BFF, 'N'}, {0x10CFA, 0x10CFF, 'N'},
    {0x10D24, 0x10D2F, 'O'}, {0x10D30, 0x10D49, 'N'}, {0x10E60, 0x10E7F, 'N'},
    {0x10EAB, 0x10EAF, 'O'}, {0x10F1D, 0x10F26, 'N'}, {0x10F46, 0x10F50, 'O'},
    {0x10F51, 0x10F54, 'N'}, {0x10F55, 0x10F6F, 'O'}, {0x10F82, 0x10FAF, 'O'},
    {0x10FC5, 0x10FDF, 'N'}, {0x11000, 0x11002, 'O'}, {0x11038, 0x11051, 'O'},
    {0x11052, 0x1106F, 'N'}, {0x11070, 0x11070, 'O'}, {0x11073, 0x11074, 'O'},
    {0x1107F, 0x11082, 'O'}, {0x110B0, 0x110CF, 'O'}, {0x110F0, 0x110FF, 'N'},
    {0x11100, 0x11102, 'O'}, {0x11127, 0x11135, 'O'}, {0x11136, 0x1113F, 'N'},
    {0x11140, 0x11143, 'O'}, {0x11145, 0x11146, 'O'}, {0x11173, 0x11175, 'O'},
    {0x11180, 0x11182, 'O'}, {0x111B3, 0x111C0, 'O'}, {0x111C5, 0x111CF, 'O'},
    {0x111D0, 0x111D9, 'N'}, {0x111DB, 0x111DB, 'O'}, {0x111DD, 0x111E0, 'O'},
    {0x111E1, 0x111FF, 'N'}, {0x1122C, 0x1123E, 'O'}, {0x112A9, 0x112AF, 'O'},
    {0x112DF, 0x112EF, 'O'}, {0x112F0, 0x112FF, 'N'}, {0x11300, 0x11304, 'O'},
    {0x1133B, 0x1133C, 'O'}, {0x1133E, 0x1134F, 'O'}, {0x11357, 0x1135C, 'O'},
    {0x11362, 0x1137F, 'O'}, {0x11435, 0x11446, 'O'}, {0x1144B, 0x1144F, 'O'},
    {0x11450, 0x11459, 'N'}, {0x1145A, 0x1145E, 'O'}, {0x114B0, 0x114C3, 'O'},
    {0x114C6, 0x114C6, 'O'}, {0x114D0, 0x1157F, 'N'}, {0x115AF, 0x115D7, 'O'},
    {0x115DC, 0x115FF, 'O'}, {0x11630, 0x11643, 'O'}, {0x11650, 0x1165F, 'N'},
    {0x11660, 0x1167F, 'O'}, {0x116AB, 0x116B7, 'O'}, {0x116B9, 0x116BF, 'O'},
    {0x116C0, 0x116FF, 'N'}, {0x1171D, 0x1172F, 'O'}, {0x11730, 0x1173B, 'N'},
    {0x1173C, 0x1173F, 'O'}, {0x1182C, 0x1189F, 'O'}, {0x118E0, 0x118FE, 'N'},
    {0x11930, 0x1193E, 'O'}, {0x11940, 0x11940, 'O'}, {0x11942, 0x1194F, 'O'},
    {0x11950, 0x1199F, 'N'}, {0x119D1, 0x119E0, 'O'}, {0x119E2, 0x119E2, 'O'},
    {0x119E4, 0x119FF, 'O'}, {0x11A01, 0x11A0A, 'O'}, {0x11A33, 0x11A39, 'O'},
    {0x11A3B, 0x11A4F, 'O'}, {0x11A51, 0x11A5B, 'O'}, {0x11A8A, 0x11A9C, 'O'},
    {0x11A9E, 0x11AAF, 'O'}, {0x11BF0, 0x11BFF, 'N'}, {0x11C2F, 0x11C3F, 'O'},
    {0x11C41, 0x11C4F, 'O'}, {0x11C50, 0x11C6F, 'N'}, {0x11C70, 0x11C71, 'O'},
    {0x11C92, 0x11CFF, 'O'}, {0x11D31, 0x11D45, 'O'}, {0x11D47, 0x11D4F, 'O'},
    {0x11D50, 0x11D5F, 'N'}, {0x11D8A, 0x11D97, 'O'}, {0x11DA0, 0x11DAF, 'N'},
    {0x11DE0, 0x11EDF, 'N'}, {0x11EF3, 0x11F01, 'O'}, {0x11F50, 0x11FAF, 'N'},
    {0x11FC0, 0x11FD4, 'N'}, {0x11FD5, 0x11FFF, 'O'}, {0x12400, 0x1246F, 'N'},
    {0x12470, 0x1247F, 'O'}, {0x12FF1, 0x12FFF, 'O'}, {0x13430, 0x13440, 'O'},
    {0x16130, 0x167FF, 'N'}, {0x16A60, 0x16A6D, 'N'}, {0x16A6E, 0x16A6F, 'O'},
    {0x16AC0, 0x16ACF, 'N'}, {0x16AF0, 0x16AFF, 'O'}, {0x16B30, 0x16B3F, 'O'},
    {0x16B44, 0x16B4F, 'O'}, {0x16B50, 0x16B62, 'N'}, {0x16D70, 0x16E3F, 'N'},
    {0x16E80, 0x16E96, 'N'}, {0x16E97, 0x16E9F, 'O'}, {0x16F4F, 0x16F4F, 'O'},
    {0x16F51, 0x16F92, 'O'}, {0x16FE2, 0x16FE2, 'O'}, {0x16FE4, 0x16FF1, 'O'},
    {0x16FF4, 0x16FFF, 'N'}, {0x1BC9C, 0x1CCEF, 'O'}, {0x1CCF0, 0x1CEFF, 'N'},
    {0x1CF00, 0x1D2BF, 'O'}, {0x1D2C0, 0x1D2FF, 'N'}, {0x1D300, 0x1D35F, 'O'},
    {0x1D360, 0x1D3FF, 'N'}, {0x1D6C1, 0x1D6C1, 'O'}, {0x1D6DB, 0x1D6DB, 'O'},
    {0x1D6FB, 0x1D6FB, 'O'}, {0x1D715, 0x1D715, 'O'}, {0x1D735, 0x1D735, 'O'},
    {0x1D74F, 0x1D74F, 'O'}, {0x1D76F, 0x1D76F, 'O'}, {0x1D789, 0x1D789, 'O'},
    {0x1D7A9, 0x1D7A9, 'O'}, {0x1D7C3, 0x1D7C3, 'O'}, {0x1D7CE, 0x1D7FF, 'N'},
    {0x1D800, 0x1DEFF, 'O'}, {0x1E000, 0x1E02F, 'O'}, {0x1E130, 0x1E136, 'O'},
    {0x1E140, 0x1E14D, 'N'}, {0x1E14F, 0x1E28F, 'O'}, {0x1E2AE, 0x1E2BF, 'O'},
    {0x1E2EC, 0x1E2EF, 'O'}, {0x1E2F0, 0x1E2FE, 'N'}, {0x1E2FF, 0x1E4CF, 'O'},
    {0x1E4F0, 0x1E5CF, 'N'}, {0x1E5F1, 0x1E6BF, 'N'}, {0x1E8C7, 0x1E8CF, 'N'},
    {0x1E8D0, 0x1E8FF, 'O'}, {0x1E944, 0x1E94A, 'O'}, {0x1E950, 0x1E95D, 'N'},
    {0x1E95E, 0x1EC70, 'O'}, {0x1EC71, 0x1ECAB, 'N'}, {0x1ECAC, 0x1ECAC, 'O'},
    {0x1ECAD, 0x1ECAF, 'N'}, {0x1ECB0, 0x1ECB0, 'O'}, {0x1ECB1, 0x1ED2D, 'N'},
    {0x1ED2E, 0x1ED2E, 'O'}, {0x1ED2F, 0x1EDFF, 'N'}, {0x1EEF0, 0x1F0FF, 'O'},
    {0x1F100, 0x1F10C, 'N'}, {0x1F10D, 0x1FBEF, 'O'}, {0x1FBF0, 0x1FFFF, 'N'},
    {0xE0001, 0x10FFFF, 'O'},
};

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
    size_t lo = 0, hi = sizeof(tok_ranges) / sizeof(tok_ranges[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < tok_ranges[mid].lo) {
            hi = mid;
        } else if (cp > tok_ranges[mid].hi) {
            lo = mid + 1;
        } else {
            char c = tok_ranges[mid].cls;
            return c == 'N' ? TC_NUMBER : c == 'S' ? TC_SPACE : TC_OTHER;
        }
    }
    return TC_LETTER;
}

/* Length of the valid UTF-8 character at s[0..n), or 0 if it is not one; *cp gets it. */
static size_t tok_utf8_char(const uint8_t *s, size_t n, uint32_t *cp)
{
    return sd_utf8_char(s, n, cp);
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
