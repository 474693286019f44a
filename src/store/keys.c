/*
 * keys.c - the API-key half of store.h: calls that dispatch through the
 * key_* operations of struct store_ops. Keys are written by `scribed keys`
 * (cli/keys.c) and read by the server's key cache (server/auth.c); a store
 * only ever sees hashes. A store implementation without key support leaves
 * the operations NULL and every call answers SD_EUNSUPPORTED.
 */
#include "store/store.h"

static enum sd_err no_keys(struct store *s, struct sd_error *err)
{
    return sd_fail(err, SD_EUNSUPPORTED, "the %s store has no API keys", s->ops->name);
}

enum sd_err store_key_insert(struct store *s, const struct store_key *k, struct sd_error *err)
{
    return s->ops->key_insert ? s->ops->key_insert(s, k, err) : no_keys(s, err);
}

enum sd_err store_key_list(struct store *s, struct store_key **out, int *n, struct sd_error *err)
{
    return s->ops->key_list ? s->ops->key_list(s, out, n, err) : no_keys(s, err);
}

enum sd_err store_key_revoke(struct store *s, const char *id, int64_t now_ms,
                             struct sd_error *err)
{
    return s->ops->key_revoke ? s->ops->key_revoke(s, id, now_ms, err) : no_keys(s, err);
}

enum sd_err store_key_touch(struct store *s, const char *id, int64_t used_ms,
                            struct sd_error *err)
{
    return s->ops->key_touch ? s->ops->key_touch(s, id, used_ms, err) : no_keys(s, err);
}
