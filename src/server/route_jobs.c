/*
 * route_jobs.c - async jobs: POST /v1/jobs (202 + job), GET /v1/jobs
 * (newest first, cursor pagination), GET /v1/jobs/{id}, GET
 * /v1/jobs/{id}/result?format=..., GET /v1/jobs/{id}/extraction, DELETE
 * /v1/jobs/{id} (cancels a queued or running job; deletes a finished one:
 * upload, results and row).
 * The store is the source of truth; the queue only adds live progress.
 * Tenants: a job belongs to the caller that created it (http_principal);
 * every read and cancel passes http_owner_scope, so another tenant's job
 * answers 404 exactly like a missing one (admin keys see all).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output/format.h"
#include "server/app.h"
#include "server/routes.h"

static json_t *job_json(struct app *a, const struct store_job *sj)
{
    json_t *o = job_to_json(sj);
    if (o && sj->status == JOB_RUNNING) {
        double live = jobq_progress(a->jobs->q, sj->id);
        if (live >= 0)
            json_object_set_new(o, "progress", json_real(live));
    }
    return o;
}

static void reply_job(struct http_request *r, int status, const char *id)
{
    struct app *a = http_app(r);
    struct store_job sj = {0};
    struct sd_error err = {0};
    if (store_job_get(a->store, id, http_owner_scope(r), &sj, &err) != SD_OK) {
        http_reply_error(r, err.code, err.msg, NULL);
        return;
    }
    http_reply_json(r, status, job_json(a, &sj));
    store_job_clear(&sj);
}

void route_jobs_create(struct http_request *r)
{
    struct app *a = http_app(r);
    struct upload *u = http_upload(r);
    struct stt_params p;
    struct sd_error err = {0};
    const char *cb = NULL;
    char id[STORE_ID_MAX], path[1200];

    stt_params_init(&p);
    if (!fields_read_request(r, FIELDS_JOB, &p, &cb))
        goto out;
    job_new_id("job", id, sizeof(id));
    snprintf(path, sizeof(path), "%s/%s", a->uploads_dir, id);
    if (upload_keep_as(u, path, &err) != SD_OK) {
        http_reply_error(r, err.code, err.msg, NULL);
        goto out;
    }
    if (jobs_submit_async(a->jobs, id, http_principal(r), &p, path, upload_file_bytes(u),
                          upload_file_name(u), cb, &err) != SD_OK) {
        unlink(path);
        if (err.code == SD_ENOSPACE) {
            /* the upload fitted but the job's row did not: a condition of the service (503,
               Retry-After), not of the request; its file is gone again */
            log_event(a->log, LOG_ERROR, "job.insert_failed",
                      (struct log_field[]){LOG_STR("req", http_request_id(r)),
                                           LOG_STR("job", id), LOG_STR("error", err.msg),
                                           LOG_END});
            http_reply_condition(r, HTTP_COND_UNAVAILABLE,
                                 "the server's disk is full: the job could not be recorded; "
                                 "retry later");
        } else {
            http_reply_error(r, err.code, err.msg, NULL);
        }
        goto out;
    }
    log_event(a->log, LOG_INFO, "job.created",
              (struct log_field[]){LOG_STR("req", http_request_id(r)), LOG_STR("job", id),
                                   LOG_I64("bytes", upload_file_bytes(u)), LOG_END});
    reply_job(r, 202, id);
out:
    stt_params_clear(&p);
}

void route_job_get(struct http_request *r)
{
    reply_job(r, 200, http_path_param(r));
}

void route_job_delete(struct http_request *r)
{
    struct app *a = http_app(r);
    enum job_status was;
    struct sd_error err = {0};
    if (jobs_cancel(a->jobs, http_path_param(r), http_owner_scope(r), &was, &err) != SD_OK) {
        http_reply_error(r, err.code, err.msg, NULL);
        return;
    }
    if (job_status_is_final(was)) {
        /* a finished job: DELETE removes its audio and results at once (privacy) */
        if (jobs_delete(a->jobs, http_path_param(r), http_owner_scope(r), &was, &err) != SD_OK) {
            http_reply_error(r, err.code, err.msg, NULL);
            return;
        }
        log_event(a->log, LOG_INFO, "job.deleted",
                  (struct log_field[]){LOG_STR("req", http_request_id(r)),
                                       LOG_STR("job", http_path_param(r)),
                                       LOG_STR("was", job_status_name(was)), LOG_END});
        http_reply_json(r, 200, json_pack("{s:s, s:s, s:b}", "id", http_path_param(r), "object",
                                          "transcription.job", "deleted", 1));
        return;
    }
    log_event(a->log, LOG_INFO, "job.cancel",
              (struct log_field[]){LOG_STR("req", http_request_id(r)),
                                   LOG_STR("job", http_path_param(r)),
                                   LOG_STR("was", job_status_name(was)), LOG_END});
    reply_job(r, 200, http_path_param(r));
}

/*
 * The caller's job whose stored results are asked for (what: "results
 * exist", "its extraction exists", for the 409's message): reads it and its parameters, and answers the error
 * itself (false) when it is not the caller's, did not ask for an extraction
 * (need_extraction), has not succeeded (409: the state, not the request) or
 * its results were deleted. On true the caller clears *sj and *p.
 */
static bool job_with_results(struct http_request *r, const char *what, bool need_extraction,
                             struct store_job *sj, struct stt_params *p)
{
    struct sd_error err = {0};
    if (store_job_get(http_app(r)->store, http_path_param(r), http_owner_scope(r), sj, &err) !=
        SD_OK) {
        http_reply_error(r, err.code, err.msg, NULL);
        return false;
    }
    bool params_ok = stt_params_from_json(sj->params_json, p, NULL) == SD_OK;
    if (need_extraction && (!params_ok || !jobs_wants_extraction(p))) {
        http_reply_error(r, SD_ENOTFOUND, "this job did not ask for an extraction (extract)",
                         NULL);
        return false;
    }
    if (sj->status != JOB_SUCCEEDED) {
        char msg[400];
        snprintf(msg, sizeof(msg), "the job is %s%s%s; %s once it succeeded",
                 job_status_name(sj->status), sj->error_message ? ": " : "",
                 sj->error_message ? sj->error_message : "", what);
        http_reply_condition(r, HTTP_COND_CONFLICT, msg);
        return false;
    }
    if (sj->results_expired) {
        http_reply_error(r, SD_ENOTFOUND, "the results of this job were deleted (retention)",
                         NULL);
        return false;
    }
    return true;
}

/* Answers the job's stored result named format (content_type NULL: as stored). */
static void reply_stored_result(struct http_request *r, const struct store_job *sj,
                                const char *format, const char *content_type)
{
    struct sd_error err = {0};
    char *body = NULL, *ctype = NULL;
    size_t len = 0;
    if (store_result_get(http_app(r)->store, sj->id, http_owner_scope(r), format, &body, &len,
                         &ctype, &err) != SD_OK) {
        http_reply_error(r, err.code, err.msg, NULL);
        return;
    }
    http_reply_body(r, 200, content_type ? content_type : ctype, body, len); /* takes body */
    free(ctype);
}

void route_job_result(struct http_request *r)
{
    struct store_job sj = {0};
    struct stt_params p;
    stt_params_init(&p);
    if (job_with_results(r, "results exist", false, &sj, &p)) {
        const char *fmt = http_query(r, "format");
        if (!fmt)
            fmt = http_query(r, "response_format");
        enum output_format f = p.response_format; /* the job's own format by default */
        struct sd_error err = {0};
        if (fmt && output_format_parse(fmt, &f, &err) != SD_OK)
            http_reply_error(r, SD_EINVAL,
                             "format must be one of json, text, srt, verbose_json, vtt", "format");
        else
            reply_stored_result(r, &sj, output_format_name(f), NULL);
    }
    stt_params_clear(&p);
    store_job_clear(&sj);
}

/* The extraction record, stored as the result "extraction" (see jobs_record_success). */
void route_job_extraction(struct http_request *r)
{
    struct store_job sj = {0};
    struct stt_params p;
    stt_params_init(&p);
    if (job_with_results(r, "its extraction exists", true, &sj, &p))
        reply_stored_result(r, &sj, "extraction", "application/json");
    stt_params_clear(&p);
    store_job_clear(&sj);
}

void route_jobs_list(struct http_request *r)
{
    struct app *a = http_app(r);
    struct sd_error err = {0};
    const char *v;
    long limit = 20;
    int status = -1;

    if ((v = http_query(r, "limit"))) {
        char *end = NULL;
        limit = strtol(v, &end, 10);
        if (end == v || *end || limit < 1 || limit > 100) {
            http_reply_error(r, SD_EINVAL, "limit must be a number from 1 to 100", "limit");
            return;
        }
    }
    if ((v = http_query(r, "status"))) {
        enum job_status s;
        if (!job_status_parse(v, &s)) {
            http_reply_error(r, SD_EINVAL,
                             "status must be queued, running, succeeded, failed or cancelled",
                             "status");
            return;
        }
        status = (int)s;
    }
    struct store_job *v_jobs = NULL;
    int n = 0;
    bool more = false;
    if (store_job_list(a->store, http_owner_scope(r), http_query(r, "after"), (int)limit, status,
                       &v_jobs, &n, &more, &err) != SD_OK) {
        http_reply_error(r, err.code, err.msg, err.code == SD_EINVAL ? "after" : NULL);
        return;
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, job_json(a, &v_jobs[i]));
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    json_object_set_new(o, "first_id", n ? json_string(v_jobs[0].id) : json_null());
    json_object_set_new(o, "last_id", n ? json_string(v_jobs[n - 1].id) : json_null());
    json_object_set_new(o, "has_more", json_boolean(more));
    store_jobs_free(v_jobs, n);
    http_reply_json(r, 200, o);
}
