/*
 * test_tts.c - the voice table, sentence pieces, the encoders (every format
 * opens, takes audio at any rate and finishes; wav's streaming header; pcm's
 * exact length after resampling) and synthesis with each engine.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tts/encode.h"
#include "tts/sentences.h"
#include "tts/tts.h"

TEST(tts_voice_table_resolves_ids_and_openai_names)
{
    CHECK(tts_voice_count() >= 5);
    CHECK(tts_voice_find(TTS_DEFAULT_VOICE) != NULL);
    CHECK(strcmp(tts_voice_find("alloy")->id, TTS_DEFAULT_VOICE) == 0);
    CHECK(tts_voice_find("flite-kal16")->engine == TTS_FLITE);
    CHECK(tts_voice_find("espeak-en")->engine == TTS_ESPEAK);
    CHECK(tts_voice_find("Alloy") == NULL);
    CHECK(tts_voice_find("") == NULL);
    CHECK(tts_voice_find(NULL) == NULL);
    const char *name;
    const struct tts_voice *v;
    size_t n = 0;
    for (; tts_openai_voice_at(n, &name, &v); n++)
        CHECK_MSG(v != NULL, "OpenAI voice %s maps to no voice", name);
    CHECK_EQ_INT(n, 11);
}

static size_t piece(const char *s)
{
    return tts_next_piece(s, strlen(s), TTS_PIECE_MAX_BYTES);
}

TEST(tts_pieces_end_at_sentence_boundaries)
{
    CHECK_EQ_INT(piece("Hello there. How are you?"), 13); /* the space goes with the first */
    CHECK_EQ_INT(piece("Wait... what?! No."), 8);
    CHECK_EQ_INT(piece("It costs 3.50 dollars. Yes."), 23);   /* no break inside a number */
    CHECK_EQ_INT(piece("He said \"go.\" Then left."), 14);    /* closing quote stays */
    CHECK_EQ_INT(piece("line one\nline two"), 9);
    CHECK_EQ_INT(piece("no end mark"), 11);
    CHECK_EQ_INT(piece("终于。然后"), 9);                      /* a CJK full stop */
    CHECK_EQ_INT(tts_next_piece("", 0, 100), 0);
}

TEST(tts_long_piece_is_cut_at_a_space_or_character)
{
    char text[2000];
    memset(text, 'a', sizeof(text));
    memcpy(text + 100, " ", 1);
    size_t n = tts_next_piece(text, sizeof(text), 600);
    CHECK_EQ_INT(n, 101);
    /* no space at all: cut at the limit, never inside a UTF-8 character */
    for (size_t i = 0; i + 1 < sizeof(text); i += 2)
        memcpy(text + i, "\xC3\xA9", 2); /* é */
    n = tts_next_piece(text, sizeof(text), 601);
    CHECK_EQ_INT(n, 600);
    CHECK(!tts_piece_speakable(" ... !", 6));
    CHECK(tts_piece_speakable(" a.", 3));
}

struct sink {
    unsigned char *buf;
    size_t n, cap;
    int calls;
};

static bool to_sink(void *user, const uint8_t *data, size_t n)
{
    struct sink *s = user;
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->n, data, n);
    s->n += n;
    s->calls++;
    return true;
}

static int16_t *tone(int rate, double seconds, size_t *n)
{
    *n = (size_t)(rate * seconds);
    int16_t *pcm = malloc(*n * sizeof(int16_t));
    for (size_t i = 0; i < *n; i++)
        pcm[i] = (int16_t)((i * 440 * 2 % (size_t)rate) * 20000 / rate - 10000);
    return pcm;
}

TEST(tts_pcm_and_wav_have_the_exact_resampled_length)
{
    size_t n;
    int16_t *pcm = tone(16000, 1.0, &n);
    for (int f = TTS_WAV; f <= TTS_PCM; f++) {
        struct sink s = {0};
        struct tts_encoder *e = NULL;
        struct sd_error err = {0};
        CHECK(tts_encoder_create((enum tts_format)f, to_sink, &s, &e, &err) == SD_OK);
        CHECK(tts_encoder_feed(e, pcm, n, 16000, &err) == SD_OK);
        CHECK(tts_encoder_feed(e, pcm, n / 2, 22050, &err) == SD_OK); /* a rate change */
        CHECK(tts_encoder_finish(e, &err) == SD_OK);
        size_t header = f == TTS_WAV ? 44 : 0;
        /* 1 s at 16 kHz + 8000 samples at 22.05 kHz -> 24000 + 8707 at 24 kHz */
        size_t want = 24000 + (size_t)(8000 * 24000.0 / 22050 + 0.5);
        CHECK_MSG(s.n - header >= 2 * (want - 2) && s.n - header <= 2 * (want + 2),
                  "%s: %zu bytes, want ~%zu", tts_format_name((enum tts_format)f), s.n - header,
                  2 * want);
        CHECK_EQ_INT(tts_encoder_samples(e) * 2, (long long)(s.n - header));
        if (f == TTS_WAV)
            CHECK(memcmp(s.buf, "RIFF\xff\xff\xff\xffWAVEfmt ", 16) == 0 &&
                  memcmp(s.buf + 36, "data\xff\xff\xff\xff", 8) == 0);
        tts_encoder_destroy(e);
        free(s.buf);
    }
    free(pcm);
}

TEST(tts_every_codec_format_encodes_and_writes_as_it_goes)
{
    static const unsigned char magic[][4] = {
        [TTS_MP3] = {0xFF}, [TTS_OPUS] = "OggS", [TTS_AAC] = {0xFF}, [TTS_FLAC] = "fLaC",
    };
    size_t n;
    int16_t *pcm = tone(16000, 3.0, &n);
    for (int f = TTS_MP3; f <= TTS_FLAC; f++) {
        struct sink s = {0};
        struct tts_encoder *e = NULL;
        struct sd_error err = {0};
        CHECK_MSG(tts_encoder_create((enum tts_format)f, to_sink, &s, &e, &err) == SD_OK, "%s",
                  err.msg);
        CHECK(tts_encoder_feed(e, pcm, n, 16000, &err) == SD_OK);
        CHECK(tts_encoder_flush(e, &err) == SD_OK);
        size_t before_end = s.n;
        CHECK_MSG(before_end > 1000, "%s wrote %zu bytes before finishing",
                  tts_format_name((enum tts_format)f), before_end);
        CHECK(tts_encoder_finish(e, &err) == SD_OK);
        CHECK(s.n >= before_end);
        CHECK(s.buf[0] == magic[f][0]);
        if (f == TTS_OPUS || f == TTS_FLAC)
            CHECK(memcmp(s.buf, magic[f], 4) == 0);
        tts_encoder_destroy(e);
        free(s.buf);
    }
    free(pcm);
    enum tts_format f;
    CHECK(tts_format_parse("opus", &f) && f == TTS_OPUS);
    CHECK(!tts_format_parse("ogg", &f) && !tts_format_parse(NULL, &f));
}

static bool stop_writer(void *user, const uint8_t *data, size_t n)
{
    (void)user;
    (void)data;
    (void)n;
    return false;
}

TEST(tts_a_writer_that_stops_cancels_the_encoder)
{
    size_t n;
    int16_t *pcm = tone(16000, 1.0, &n);
    struct tts_encoder *e = NULL;
    struct sd_error err = {0};
    CHECK(tts_encoder_create(TTS_PCM, stop_writer, NULL, &e, &err) == SD_OK);
    CHECK(tts_encoder_feed(e, pcm, n, 16000, &err) == SD_ECANCELLED);
    tts_encoder_destroy(e);
    /* mp3 writes nothing until its first frame: the stop shows on the feed */
    CHECK(tts_encoder_create(TTS_MP3, stop_writer, NULL, &e, &err) == SD_OK);
    CHECK(tts_encoder_feed(e, pcm, n, 16000, &err) == SD_ECANCELLED);
    tts_encoder_destroy(e);
    CHECK(tts_encoder_create(TTS_WAV, stop_writer, NULL, &e, &err) == SD_ECANCELLED);
    free(pcm);
}

struct count {
    size_t samples;
    int rate;
};

static bool count_pcm(void *user, const int16_t *pcm, size_t n, int rate)
{
    struct count *c = user;
    (void)pcm;
    c->samples += n;
    c->rate = rate;
    return true;
}

TEST(tts_each_engine_speaks_and_speed_changes_the_length)
{
    struct tts *t = NULL;
    struct sd_error err = {0};
    CHECK(tts_open(&t, &err) == SD_OK);
    const char *ids[] = {"flite-kal16", "flite-rms", "espeak-en"};
    for (size_t i = 0; i < 3; i++) {
        const struct tts_voice *v = tts_voice_find(ids[i]);
        struct count normal = {0}, fast = {0};
        CHECK(tts_synthesize(t, v, "Hello world, this is a test.", 1.0, count_pcm, &normal,
                             &err) == SD_OK);
        CHECK(tts_synthesize(t, v, "Hello world, this is a test.", 2.0, count_pcm, &fast,
                             &err) == SD_OK);
        CHECK_EQ_INT(normal.rate, tts_voice_rate(t, v));
        double s = (double)normal.samples / normal.rate;
        CHECK_MSG(s > 1.0 && s < 5.0, "%s: %.2f s", ids[i], s);
        CHECK_MSG(fast.samples < normal.samples * 0.75, "%s: speed 2 gave %zu of %zu samples",
                  ids[i], fast.samples, normal.samples);
    }
    CHECK(tts_synthesize(t, tts_voice_find("flite-rms"), "x", 5.0, count_pcm, &(struct count){0},
                         &err) == SD_EINVAL);
    tts_close(t);
}
