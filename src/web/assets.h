/*
 * assets.h - the web page's files, compiled into the binary from web/ by
 * tools/embed.c at build time. The HTTP layer serves them at their paths.
 */
#ifndef SD_WEB_ASSETS_H
#define SD_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
    const char *path;         /* "/index.html", "/app.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t size;
};

/* Terminated by an entry with path NULL. */
extern const struct web_asset web_assets[];

/* The asset at path ("/" means "/index.html"), or NULL. */
const struct web_asset *web_asset_find(const char *path);

#endif
