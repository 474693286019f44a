/* decode.c - placeholder until the sandboxed FFmpeg decoder lands (see audio.h). */
#include "audio/audio.h"

struct audio_decode_opts audio_decode_opts_default(void)
{
    struct audio_decode_opts o = {.max_duration_s = 4 * 3600.0, .allowed = NULL, .sandbox = 1};
    return o;
}

enum sd_err audio_decode_file(const char *path, const struct audio_decode_opts *opts, float **pcm,
                              size_t *n_samples, struct audio_info *info, struct sd_error *err)
{
    (void)opts, (void)pcm, (void)n_samples, (void)info;
    return sd_fail(err, SD_EUNSUPPORTED, "%s: audio decoding is not implemented yet", path);
}
