/*
 * route_web.c - GET / and GET /<asset>: the web page, served from the files
 * compiled into the binary (src/web/assets.h), so it works on a read-only
 * root file system and makes no external requests.
 */
#include <stdlib.h>
#include <string.h>

#include "server/http.h"
#include "server/routes.h"
#include "web/assets.h"

void route_web(struct http_request *r)
{
    const char *name = http_path_param(r);
    char path[160];
    snprintf(path, sizeof(path), "/%s", name && *name ? name : "index.html");
    const struct web_asset *a = web_asset_find(path);
    if (!a) {
        http_reply_error(r, SD_ENOTFOUND, "no such page", NULL);
        return;
    }
    char *copy = malloc(a->size ? a->size : 1);
    if (!copy) {
        http_reply_error(r, SD_ENOMEM, "out of memory", NULL);
        return;
    }
    memcpy(copy, a->data, a->size);
    http_reply_body(r, 200, a->content_type, copy, a->size);
}
