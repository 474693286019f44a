/*
 * api.js - the page's only door to the server: fetch/XHR/WebSocket helpers
 * that add the API key (Authorization: Bearer, or ?api_key= for WebSockets,
 * which cannot send headers), turn OpenAI-style error bodies into ApiError,
 * and report 401s so the page can show its key field. Same origin only:
 * every URL is a path on the server that served the page. No UI here.
 */

const KEY_STORAGE = "scribed.apiKey";
let unauthorizedHandler = null;

export class ApiError extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

export function apiKey() {
    try {
        return localStorage.getItem(KEY_STORAGE) || "";
    } catch {
        return ""; /* storage blocked (private mode, policy): no key */
    }
}

export function setApiKey(key) {
    try {
        if (key)
            localStorage.setItem(KEY_STORAGE, key);
        else
            localStorage.removeItem(KEY_STORAGE);
    } catch {
        /* not persisted; nothing else to do */
    }
}

/* fn(status) runs on every 401 answer. */
export function onUnauthorized(fn) {
    unauthorizedHandler = fn;
}

function authHeaders() {
    const key = apiKey();
    return key ? { Authorization: `Bearer ${key}` } : {};
}

/* The message of an error answer: OpenAI's {error:{message}}, whisper.cpp's {error:"..."}, or text. */
function errorMessage(status, text) {
    try {
        const body = JSON.parse(text);
        if (body && body.error) {
            if (typeof body.error === "string")
                return body.error;
            if (body.error.message)
                return body.error.message;
        }
    } catch {
        /* not JSON */
    }
    const t = (text || "").trim();
    return t ? t.slice(0, 300) : `HTTP ${status}`;
}

function failed(status, text) {
    if (status === 401 && unauthorizedHandler)
        unauthorizedHandler(status);
    return new ApiError(status, errorMessage(status, text));
}

/* fetch(path) with the key; resolves to the Response when ok, else throws ApiError. */
export async function api(path, opts = {}) {
    const headers = { ...authHeaders(), ...(opts.headers || {}) };
    let res;
    try {
        res = await fetch(path, { ...opts, headers, cache: "no-store" });
    } catch (e) {
        throw new ApiError(0, "the server cannot be reached");
    }
    if (!res.ok)
        throw failed(res.status, await res.text().catch(() => ""));
    return res;
}

export async function apiJson(path, opts = {}) {
    const res = await api(path, opts);
    return res.json();
}

/*
 * POST form as multipart with XMLHttpRequest (fetch has no upload progress).
 * onProgress(fraction) during the upload. Resolves to the parsed JSON answer.
 * The returned object's abort() cancels the upload.
 */
export function upload(path, form, onProgress) {
    const xhr = new XMLHttpRequest();
    const done = new Promise((resolve, reject) => {
        xhr.open("POST", path);
        for (const [k, v] of Object.entries(authHeaders()))
            xhr.setRequestHeader(k, v);
        xhr.upload.onprogress = (e) => {
            if (e.lengthComputable && onProgress)
                onProgress(e.loaded / e.total);
        };
        xhr.upload.onload = () => onProgress && onProgress(1);
        xhr.onload = () => {
            if (xhr.status >= 200 && xhr.status < 300) {
                try {
                    resolve(JSON.parse(xhr.responseText));
                } catch {
                    reject(new ApiError(xhr.status, "the server's answer was not JSON"));
                }
            } else {
                reject(failed(xhr.status, xhr.responseText));
            }
        };
        xhr.onerror = () => reject(new ApiError(0, "the upload failed (connection lost)"));
        xhr.onabort = () => reject(new ApiError(0, "the upload was cancelled"));
        xhr.send(form);
    });
    return { done, abort: () => xhr.abort() };
}

/* ws:// or wss:// URL of path on this server, with the key as api_key when set. */
export function wsUrl(path) {
    const url = new URL(path, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const key = apiKey();
    if (key)
        url.searchParams.set("api_key", key);
    return url.toString();
}
