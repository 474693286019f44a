/*
 * tts.c - the voice table and synthesis with flite and espeak-ng (tts.h).
 */
#include "tts/tts.h"

#include <espeak-ng/speak_lib.h>
#include <flite/flite.h>
#include <flite/flite_version.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The voices' register functions: Debian ships them without a header. */
cst_voice *register_cmu_us_kal16(const char *voxdir);
cst_voice *register_cmu_us_rms(const char *voxdir);
cst_voice *register_cmu_us_slt(const char *voxdir);
cst_voice *register_cmu_us_awb(const char *voxdir);

static const struct tts_voice voices[] = {
#define VOICE(id, engine, ev, lang, gender, desc) {id, engine, ev, lang, gender, desc},
#define OPENAI_VOICE(name, id)
#include "tts/voices.def"
#undef VOICE
#undef OPENAI_VOICE
};
#define N_VOICES (sizeof(voices) / sizeof(voices[0]))

static const struct openai_voice {
    const char *name, *id;
} openai_voices[] = {
#define VOICE(id, engine, ev, lang, gender, desc)
#define OPENAI_VOICE(name, id) {name, id},
#include "tts/voices.def"
#undef VOICE
#undef OPENAI_VOICE
};
#define N_OPENAI (sizeof(openai_voices) / sizeof(openai_voices[0]))

static const struct flite_voice_fn {
    const char *name;
    cst_voice *(*reg)(const char *voxdir);
    bool noise; /* clustergen: its excitation noise comes from libc rand() */
} flite_voices[] = {
    {"kal16", register_cmu_us_kal16, false}, /* diphone: deterministic as it is */
    {"rms", register_cmu_us_rms, true},
    {"slt", register_cmu_us_slt, true},
    {"awb", register_cmu_us_awb, true},
};
#define N_FLITE (sizeof(flite_voices) / sizeof(flite_voices[0]))

struct tts {
    cst_voice *flite[N_FLITE]; /* flite's own objects, registered once; read-only here */
    pthread_mutex_t espeak_mu; /* espeak-ng is one global state: one call at a time */
    bool espeak_tried;         /* initialised on first use (guarded by espeak_mu) */
    pthread_mutex_t noise_mu;  /* libc rand()'s seed, for the clustergen voices (flite_speak) */
    bool espeak_ok;
    atomic_int espeak_rate;    /* its output sample rate once initialised (read without the lock) */
    char version[96];
};

size_t tts_voice_count(void)
{
    return N_VOICES;
}

const struct tts_voice *tts_voice_at(size_t i)
{
    return i < N_VOICES ? &voices[i] : NULL;
}

static const struct tts_voice *voice_by_id(const char *id)
{
    for (size_t i = 0; i < N_VOICES; i++)
        if (strcmp(voices[i].id, id) == 0)
            return &voices[i];
    return NULL;
}

const struct tts_voice *tts_voice_find(const char *name)
{
    if (!name)
        return NULL;
    const struct tts_voice *v = voice_by_id(name);
    if (v)
        return v;
    for (size_t i = 0; i < N_OPENAI; i++)
        if (strcmp(openai_voices[i].name, name) == 0)
            return voice_by_id(openai_voices[i].id);
    return NULL;
}

bool tts_openai_voice_at(size_t i, const char **name, const struct tts_voice **voice)
{
    if (i >= N_OPENAI)
        return false;
    *name = openai_voices[i].name;
    *voice = voice_by_id(openai_voices[i].id);
    return true;
}

const char *tts_engine_name(enum tts_engine_kind e)
{
    return e == TTS_FLITE ? "flite" : "espeak-ng";
}

static int flite_index(const char *name)
{
    for (size_t i = 0; i < N_FLITE; i++)
        if (strcmp(flite_voices[i].name, name) == 0)
            return (int)i;
    return -1;
}

int tts_voice_rate(const struct tts *t, const struct tts_voice *v)
{
    /* espeak-ng: 22050 Hz for every voice, known for sure once it is initialised */
    int rate = t && v->engine == TTS_ESPEAK ? atomic_load(&t->espeak_rate) : 0;
    if (v->engine == TTS_ESPEAK)
        return rate > 0 ? rate : 22050;
    return 16000; /* all four flite voices Debian ships */
}

const char *tts_version(const struct tts *t)
{
    return t->version;
}

enum sd_err tts_open(struct tts **out, struct sd_error *err)
{
    struct tts *t = calloc(1, sizeof(*t));
    if (!t)
        return sd_fail(err, SD_ENOMEM, "tts");
    pthread_mutex_init(&t->espeak_mu, NULL);
    pthread_mutex_init(&t->noise_mu, NULL);
    flite_init(); /* idempotent: registers the language modules' features once */
    for (size_t i = 0; i < N_FLITE; i++) {
        t->flite[i] = flite_voices[i].reg(NULL);
        if (!t->flite[i]) {
            tts_close(t);
            return sd_fail(err, SD_EINTERNAL, "flite voice %s did not load", flite_voices[i].name);
        }
    }
    const char *data_path = NULL;
    const char *ev = espeak_Info(&data_path); /* the version only: no initialisation */
    snprintf(t->version, sizeof(t->version), "flite %s, espeak-ng %s", FLITE_PROJECT_VERSION,
             ev ? ev : "?");
    *out = t;
    return SD_OK;
}

void tts_close(struct tts *t)
{
    if (!t)
        return;
    /*
     * flite's voices stay registered: register_cmu_us_* hands out one
     * global voice per process, and unregistering it under another handle
     * would pull it from under that handle. espeak-ng likewise stays
     * initialised (espeak_Terminate, then espeak_Initialize again, leaks in
     * 1.51). Both are freed by the process's exit.
     */
    pthread_mutex_destroy(&t->espeak_mu);
    pthread_mutex_destroy(&t->noise_mu);
    free(t);
}

static enum sd_err flite_speak(struct tts *t, const struct tts_voice *v, const char *text,
                               double speed, tts_pcm_fn fn, void *user, struct sd_error *err)
{
    int k = flite_index(v->engine_voice);
    if (k < 0)
        return sd_fail(err, SD_EINTERNAL, "no flite voice %s", v->engine_voice);
    cst_utterance *u = new_utterance();
    if (!u)
        return sd_fail(err, SD_ENOMEM, "flite utterance");
    utt_set_input_text(u, text);
    utt_init(u, t->flite[k]);
    /* on the utterance, which shadows the voice's features: the voice stays shared and unchanged */
    feat_set_float(u->features, "duration_stretch", (float)(1.0 / speed));
    enum sd_err rc = SD_OK;
    /*
     * The clustergen voices draw their noise from libc rand(), one global
     * sequence: reseeding it for each utterance, one at a time, makes the
     * same request the same bytes (a stream equals the CLI's file) whatever
     * ran before. kal16 needs no noise and runs without the lock.
     */
    bool noise = flite_voices[k].noise;
    if (noise) {
        pthread_mutex_lock(&t->noise_mu);
        srand(1);
    }
    bool synthesised = utt_synth(u) != NULL;
    if (noise)
        pthread_mutex_unlock(&t->noise_mu);
    if (!synthesised) {
        rc = sd_fail(err, SD_EINTERNAL, "flite could not synthesise the text");
    } else {
        cst_wave *w = utt_wave(u);
        if (w && w->num_samples > 0 &&
            !fn(user, w->samples, (size_t)w->num_samples, w->sample_rate))
            rc = sd_fail(err, SD_ECANCELLED, "synthesis stopped");
    }
    delete_utterance(u);
    return rc;
}

struct espeak_call {
    tts_pcm_fn fn;
    void *user;
    int rate;
    bool stopped;
};

static int espeak_cb(short *wav, int n, espeak_EVENT *events)
{
    struct espeak_call *c = events ? events->user_data : NULL;
    if (!c)
        return 1;
    if (wav && n > 0 && !c->stopped && !c->fn(c->user, wav, (size_t)n, c->rate))
        c->stopped = true;
    return c->stopped ? 1 : 0; /* 1 asks espeak-ng to stop */
}

static enum sd_err espeak_speak(struct tts *t, const struct tts_voice *v, const char *text,
                                double speed, tts_pcm_fn fn, void *user, struct sd_error *err)
{
    int rate = (int)(espeakRATE_NORMAL * speed + 0.5);
    rate = rate < espeakRATE_MINIMUM ? espeakRATE_MINIMUM
           : rate > espeakRATE_MAXIMUM ? espeakRATE_MAXIMUM
                                       : rate;
    enum sd_err rc = SD_OK;
    pthread_mutex_lock(&t->espeak_mu);
    if (!t->espeak_tried) {
        /*
         * On first use, not at start: Debian's espeak-ng 1.51 opens an audio
         * device object (pcaudiolib: PulseAudio, which makes /tmp/pulse-*
         * without XDG_RUNTIME_DIR) even in synchronous mode, so a service
         * that never speaks with espeak-ng never touches it. Bit 15: a
         * missing espeak-ng-data is reported instead of exiting the process.
         */
        t->espeak_tried = true;
        int srate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, NULL, 1 << 15);
        t->espeak_ok = srate > 0;
        atomic_store(&t->espeak_rate, srate > 0 ? srate : 0);
    }
    if (!t->espeak_ok) {
        pthread_mutex_unlock(&t->espeak_mu);
        return sd_fail(err, SD_EUNSUPPORTED, "espeak-ng is not available (no espeak-ng-data)");
    }
    struct espeak_call c = {fn, user, atomic_load(&t->espeak_rate), false};
    espeak_SetSynthCallback(espeak_cb);
    if (espeak_SetVoiceByName(v->engine_voice) != EE_OK) {
        rc = sd_fail(err, SD_EINTERNAL, "espeak-ng has no voice %s", v->engine_voice);
    } else {
        espeak_SetParameter(espeakRATE, rate, 0);
        espeak_ERROR e = espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0,
                                      espeakCHARS_UTF8, NULL, &c);
        if (c.stopped)
            rc = sd_fail(err, SD_ECANCELLED, "synthesis stopped");
        else if (e != EE_OK)
            rc = sd_fail(err, SD_EINTERNAL, "espeak-ng could not synthesise the text (%d)", e);
    }
    pthread_mutex_unlock(&t->espeak_mu);
    return rc;
}

enum sd_err tts_synthesize(struct tts *t, const struct tts_voice *v, const char *text,
                           double speed, tts_pcm_fn fn, void *user, struct sd_error *err)
{
    if (!(speed >= TTS_SPEED_MIN && speed <= TTS_SPEED_MAX))
        return sd_fail(err, SD_EINVAL, "speed must be between 0.25 and 4.0");
    if (v->engine == TTS_FLITE)
        return flite_speak(t, v, text, speed, fn, user, err);
    return espeak_speak(t, v, text, speed, fn, user, err);
}
