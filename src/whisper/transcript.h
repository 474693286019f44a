/*
 * transcript.h - the result of a transcription: segments with times, tokens
 * and decoding statistics, optional words. Produced by transcribe.h, rendered
 * by output/format.h, stored by the service. Plain data; all strings and
 * arrays are owned by the transcript (transcript_destroy frees everything).
 */
#ifndef SD_WHISPER_TRANSCRIPT_H
#define SD_WHISPER_TRANSCRIPT_H

#include <stdint.h>

struct transcript_word {
    char *word;
    double start, end;   /* seconds in the original audio */
    float probability;
};

struct transcript_segment {
    int id;
    int seek;            /* mel frame (10 ms) where its window started */
    double start, end;   /* seconds in the original audio */
    char *text;          /* UTF-8 */
    int32_t *tokens;
    int n_tokens;
    float temperature;
    float avg_logprob;
    float compression_ratio;
    float no_speech_prob;
    struct transcript_word *words;
    int n_words;
};

struct transcript {
    char *task;          /* "transcribe" | "translate" */
    char *language;      /* "en", ... */
    double duration;     /* seconds of input audio */
    char *text;          /* all segments joined */
    struct transcript_segment *segments;
    int n_segments;
    /* language detection (multilingual models): code -> probability */
    char (*lang_codes)[8];
    float *lang_probs;
    int n_langs;
};

void transcript_destroy(struct transcript *t);

#endif
