/*
 * test_relay.c - the parent's side of the decoder pipe (audio_relay_records)
 * with a caller that gives up: a decoder that stops sending (SIGSTOP, a
 * stall) must not hold the caller once keep_going says no; and with records a
 * healthy child never sends, which are refused.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_internal.h"
#include "check.h"

struct asked {
    int calls;
    double first_s, last_s;
    int give_up_after;
};

static bool ask(void *user, double stalled_s)
{
    struct asked *a = user;
    if (a->calls++ == 0)
        a->first_s = stalled_s;
    a->last_s = stalled_s;
    return a->calls <= a->give_up_after;
}

static enum sd_err on_info(void *user, const struct audio_info *info, struct sd_error *err)
{
    (void)user, (void)info, (void)err;
    return SD_OK;
}

static enum sd_err on_pcm(void *user, const float *pcm, size_t n, struct sd_error *err)
{
    (void)pcm, (void)err;
    *(size_t *)user += n;
    return SD_OK;
}

static void put(int fd, uint32_t type, const void *payload, uint32_t len)
{
    struct audio_rec_hdr h = {type, len};
    CHECK(write(fd, &h, sizeof(h)) == (ssize_t)sizeof(h));
    if (len)
        CHECK(write(fd, payload, len) == (ssize_t)len);
}

TEST(audio_relay_stops_when_the_caller_gives_up)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    struct audio_info info = {.sample_rate = 16000, .channels = 1};
    float pcm[1000] = {0};
    put(p[1], AUDIO_REC_INFO, &info, sizeof(info));
    put(p[1], AUDIO_REC_PCM, pcm, sizeof(pcm));
    /* then silence, as from a stopped child; the write end stays open */
    struct asked a = {.give_up_after = 5};
    struct audio_decode_opts o = audio_opts_resolve(NULL);
    o.timeout_ms = 3600 * 1000; /* only keep_going can end this */
    o.keep_going = ask;
    o.keep_going_user = &a;
    size_t got = 0;
    struct audio_sink sink = {on_info, on_pcm, &got};
    struct sd_error err = {0};
    int state = AUDIO_RELAY_RUNNING;
    CHECK_EQ_INT(audio_relay_records(p[0], &o, &sink, &state, &err), SD_ECANCELLED);
    CHECK_EQ_INT(state, AUDIO_RELAY_RUNNING); /* the caller kills the child */
    CHECK_EQ_INT(got, 1000);
    CHECK_EQ_INT(a.calls, 6);
    CHECK(a.last_s > a.first_s); /* the silence it reports grows */
    close(p[0]);
    close(p[1]);
}

TEST(audio_relay_asks_and_goes_on)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    struct audio_info info = {.sample_rate = 16000, .channels = 1};
    float pcm[512] = {0};
    put(p[1], AUDIO_REC_INFO, &info, sizeof(info));
    put(p[1], AUDIO_REC_PCM, pcm, sizeof(pcm));
    put(p[1], AUDIO_REC_END, NULL, 0);
    struct asked a = {.give_up_after = 1000};
    struct audio_decode_opts o = audio_opts_resolve(NULL);
    o.keep_going = ask;
    o.keep_going_user = &a;
    o.timeout_ms_per_audio_s = 100;
    size_t got = 0;
    struct audio_sink sink = {on_info, on_pcm, &got};
    struct sd_error err = {0};
    int state = AUDIO_RELAY_RUNNING;
    CHECK_OK(audio_relay_records(p[0], &o, &sink, &state, &err), &err);
    CHECK_EQ_INT(state, AUDIO_RELAY_DONE);
    CHECK_EQ_INT(got, 512);
    CHECK(a.calls >= 1);
    close(p[0]);
    close(p[1]);
}

/* A child never flushes an empty PCM record: one can only come from a compromised
 * decoder, and is refused like any malformed record, before the sink sees it. */
TEST(audio_relay_refuses_an_empty_pcm_record)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    struct audio_info info = {.sample_rate = 16000, .channels = 1};
    put(p[1], AUDIO_REC_INFO, &info, sizeof(info));
    put(p[1], AUDIO_REC_PCM, NULL, 0);
    put(p[1], AUDIO_REC_END, NULL, 0);
    struct audio_decode_opts o = audio_opts_resolve(NULL);
    size_t got = 0;
    struct audio_sink sink = {on_info, on_pcm, &got};
    struct sd_error err = {0};
    int state = AUDIO_RELAY_RUNNING;
    CHECK_EQ_INT(audio_relay_records(p[0], &o, &sink, &state, &err), SD_EFORMAT);
    CHECK(strstr(err.msg, "misbehaved") != NULL);
    CHECK_EQ_INT(got, 0);
    close(p[0]);
    close(p[1]);
}
