/*
 * test_speech.c - the speech request check (shared by the API and the CLI)
 * and a whole run: pieces synthesised one at a time, written as they go.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pipeline/speech.h"

static enum sd_err check_input(const char *in, size_t n, char *param)
{
    struct speech_params p;
    struct sd_error err = {0};
    return speech_params_check(in, n, NULL, NULL, 1.0, &p, param, &err);
}

TEST(speech_params_refuse_bad_input_naming_the_field)
{
    char param[SPEECH_PARAM_MAX];
    struct speech_params p;
    struct sd_error err = {0};
    CHECK(speech_params_check("hi", 2, NULL, NULL, 1.0, &p, param, &err) == SD_OK);
    CHECK(strcmp(p.voice->id, TTS_DEFAULT_VOICE) == 0 && p.format == TTS_MP3);
    CHECK(check_input("", 0, param) == SD_EINVAL && strcmp(param, "input") == 0);
    CHECK(check_input(" \n\t", 3, param) == SD_EINVAL && strcmp(param, "input") == 0);
    CHECK(check_input("a\x01", 2, param) == SD_EINVAL);
    CHECK(check_input("a\0b", 3, param) == SD_EINVAL);
    CHECK(check_input("\xC3\x28", 2, param) == SD_EINVAL);
    CHECK(check_input("\xC2\x85x", 3, param) == SD_EINVAL); /* C1 control */
    CHECK(check_input("line\r\nbreak\ttab", 15, param) == SD_OK);
    char *big = malloc(4097 * 2);
    for (int i = 0; i < 4097; i++)
        memcpy(big + 2 * i, "\xC3\xA9", 2);
    CHECK(check_input(big, 4096 * 2, param) == SD_OK); /* characters, not bytes */
    CHECK(check_input(big, 4097 * 2, param) == SD_EINVAL && strcmp(param, "input") == 0);
    free(big);
    CHECK(speech_params_check("hi", 2, "nobody", NULL, 1.0, &p, param, &err) == SD_EINVAL &&
          strcmp(param, "voice") == 0);
    CHECK(speech_params_check("hi", 2, NULL, "xyz", 1.0, &p, param, &err) == SD_EINVAL &&
          strcmp(param, "response_format") == 0);
    CHECK(speech_params_check("hi", 2, NULL, NULL, 0.0, &p, param, &err) == SD_EINVAL &&
          strcmp(param, "speed") == 0);
    CHECK(speech_params_check("hi", 2, NULL, NULL, 4.01, &p, param, &err) == SD_EINVAL);
    CHECK(speech_params_check("hi", 2, "echo", "pcm", 0.25, &p, param, &err) == SD_OK &&
          p.format == TTS_PCM);
}

struct collected {
    size_t bytes;
    int writes;
};

static bool collect(void *user, const uint8_t *data, size_t n)
{
    struct collected *c = user;
    (void)data;
    c->bytes += n;
    c->writes++;
    return true;
}

TEST(speech_run_writes_each_piece_before_the_next)
{
    struct tts *t = NULL;
    struct sd_error err = {0};
    CHECK(tts_open(&t, &err) == SD_OK);
    struct speech_params p;
    char param[SPEECH_PARAM_MAX];
    const char *text = "One sentence here. Another one there! And a third?";
    CHECK(speech_params_check(text, strlen(text), "flite-kal16", "pcm", 1.0, &p, param, &err) ==
          SD_OK);
    struct collected c = {0};
    struct speech_run *r = NULL;
    CHECK(speech_run_start(t, text, strlen(text), &p, collect, &c, &r, &err) == SD_OK);
    bool done = false;
    size_t after[4] = {0};
    int steps = 0;
    while (!done && steps < 4) {
        CHECK(speech_run_step(r, &done, &err) == SD_OK);
        after[steps++] = c.bytes;
    }
    CHECK(done);
    CHECK_EQ_INT(steps, 4); /* three pieces, then the end */
    CHECK(after[0] > 0 && after[1] > after[0] && after[2] > after[1]);
    CHECK_EQ_INT((long long)c.bytes, (long long)(speech_run_audio_s(r) * TTS_OUT_RATE + 0.5) * 2);
    speech_run_destroy(r);
    tts_close(t);
}
