/*
 * app.js - behaviour of scribed's web page (index.html): pick or drop a file,
 * upload it as a job (POST /v1/jobs) with upload progress, poll the job,
 * show the verbose_json segments (click one to play the audio from there)
 * and the job's structured extraction if it asked for one (a template can be
 * picked in the options when the server has an LLM),
 * download txt/srt/vtt/json, list jobs, record live over /v1/realtime
 * (live.js), and ask for an API key after a 401. Server calls go through
 * api.js; nothing is fetched from anywhere but this server.
 */

import { api, apiJson, apiKey, onUnauthorized, setApiKey, upload } from "./api.js";
import { LiveSession, liveSupported } from "./live.js";
import { initSpeak, readAloud } from "./speak.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 600;
const JOBS_PAGE = 10;

const state = {
    file: null,
    job: null,         /* id of the job being watched */
    uploading: null,   /* upload handle while the file goes up */
    shown: null,       /* {id, name} of the transcript on screen */
    audio: new Map(),  /* job id -> {url, name} for files chosen in this tab */
    jobsAfter: null,
    live: null,
    liveSegs: new Map(),
    modelReady: false, /* /health says a model is loaded: recording can work */
};

/* ---------- small helpers ---------- */

function fmtTime(sec) {
    if (!Number.isFinite(sec) || sec < 0)
        sec = 0;
    const h = Math.floor(sec / 3600);
    const m = Math.floor((sec % 3600) / 60);
    const s = (sec % 60).toFixed(1).padStart(4, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function fmtBytes(n) {
    if (n < 1024)
        return `${n} B`;
    if (n < 1024 * 1024)
        return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
        if (k === "class")
            e.className = v;
        else if (k === "text")
            e.textContent = v;
        else if (k.startsWith("data-") || k.startsWith("aria-"))
            e.setAttribute(k, v);
        else
            e[k] = v;
    }
    for (const c of children)
        if (c != null)
            e.append(c);
    return e;
}

function setStatus(id, text, isError = false) {
    const p = $(id);
    p.textContent = text;
    p.classList.toggle("error", isError);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* ---------- health and API key ---------- */

/* Record works only with a loaded model; a session already going keeps its Stop button. */
function updateRecordButton() {
    const b = $("record");
    if (state.live)
        return;
    b.disabled = !state.modelReady;
    b.title = state.modelReady ? "" : "Recording needs a loaded model (see the server status above)";
}

async function checkHealth() {
    const box = $("health");
    let next = 30000;
    state.modelReady = false;
    try {
        const res = await fetch("/health", { cache: "no-store" });
        const h = await res.json();
        state.modelReady = h.model_loaded === true;
        box.classList.remove("ok", "bad", "wait");
        if (h.status === "healthy") {
            box.classList.add("ok");
            $("health-text").textContent = `Ready · ${h.model || "model loaded"}`;
        } else if (h.status === "loading") {
            box.classList.add("wait");
            $("health-text").textContent = "Loading the model…";
            next = 2000;
        } else {
            box.classList.add("bad");
            $("health-text").textContent = h.error ? `Unavailable: ${h.error}` : `Server ${h.status}`;
            next = 10000;
        }
    } catch {
        box.classList.remove("ok", "wait");
        box.classList.add("bad");
        $("health-text").textContent = "Server unreachable";
        next = 5000;
    }
    updateRecordButton();
    setTimeout(checkHealth, next);
}

function showAuth(focus) {
    const sec = $("auth");
    const had = apiKey();
    $("auth-msg").textContent = had
        ? "The saved API key was refused. Enter another one."
        : "This server asks for an API key.";
    $("auth-msg").classList.toggle("error", Boolean(had));
    sec.hidden = false;
    if (focus)
        $("api-key").focus();
}

function initAuth() {
    onUnauthorized(() => showAuth(false));
    $("auth-form").addEventListener("submit", async (e) => {
        e.preventDefault();
        setApiKey($("api-key").value.trim());
        $("api-key").value = "";
        try {
            await loadJobs(true);
            loadTemplates().catch(() => {});
            $("auth").hidden = true;
            setStatus("upload-status", "API key saved.");
        } catch {
            /* loadJobs showed the refusal */
        }
    });
    $("auth-forget").addEventListener("click", () => {
        setApiKey("");
        $("api-key").value = "";
        $("auth-msg").textContent = "Key forgotten.";
        $("auth-msg").classList.remove("error");
    });
}

/* ---------- choosing a file ---------- */

function chooseFile(f) {
    if (!f)
        return;
    state.file = f;
    $("file-name").textContent = `${f.name} (${fmtBytes(f.size)})`;
    $("submit").disabled = Boolean(state.uploading || state.job);
    setStatus("upload-status", "");
}

function initDrop() {
    const drop = $("drop");
    $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
    for (const ev of ["dragenter", "dragover"]) {
        drop.addEventListener(ev, (e) => {
            e.preventDefault();
            e.dataTransfer.dropEffect = "copy";
            drop.classList.add("over");
        });
    }
    for (const ev of ["dragleave", "dragend"])
        drop.addEventListener(ev, () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
        e.preventDefault();
        drop.classList.remove("over");
        if (e.dataTransfer.files.length)
            chooseFile(e.dataTransfer.files[0]);
    });
    /* a file dropped beside the zone must not make the browser leave the page */
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
}

/* ---------- upload and job progress ---------- */

function jobForm(file) {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("model", "whisper-1");
    form.append("response_format", "verbose_json");
    form.append("timestamp_granularities[]", "segment");
    const lang = $("opt-language").value.trim().toLowerCase();
    if (lang)
        form.append("language", lang);
    form.append("task", $("opt-task").value);
    const prompt = $("opt-prompt").value.trim();
    if (prompt)
        form.append("prompt", prompt);
    const temp = $("opt-temperature").value.trim();
    if (temp)
        form.append("temperature", temp);
    const extract = $("opt-extract").value;
    if (extract)
        form.append("extract", extract);
    return form;
}

/* The server's extraction templates, offered when an LLM is configured. */
async function loadTemplates() {
    const r = await apiJson("/v1/extraction/templates");
    const sel = $("opt-extract");
    sel.replaceChildren(el("option", { value: "", text: "Nothing (transcript only)" }));
    for (const t of r.data || [])
        sel.append(el("option", { value: t.name, text: t.name }));
    const show = !!r.llm_configured && (r.data || []).length > 0;
    sel.hidden = !show;
    $("opt-extract-label").hidden = !show;
}

function setBar(barId, pctId, frac) {
    const bar = $(barId);
    if (frac == null) {
        bar.removeAttribute("value"); /* indeterminate */
        $(pctId).textContent = "";
        return;
    }
    bar.value = frac;
    $(pctId).textContent = `${Math.round(frac * 100)}%`;
}

async function submitJob(e) {
    e.preventDefault();
    const file = state.file;
    if (!file || state.uploading || state.job)
        return;
    $("submit").disabled = true;
    $("progress").hidden = false;
    setBar("upload-bar", "upload-pct", 0);
    setBar("job-bar", "job-pct", 0);
    setStatus("upload-status", `Uploading ${file.name}…`);
    state.uploading = upload("/v1/jobs", jobForm(file),
        (f) => setBar("upload-bar", "upload-pct", f));
    $("cancel").hidden = false;
    let job;
    try {
        job = await state.uploading.done;
    } catch (err) {
        state.uploading = null;
        $("cancel").hidden = true;
        $("submit").disabled = false;
        setStatus("upload-status", `Upload failed: ${err.message}`, true);
        if (err.status === 401)
            showAuth(true);
        return;
    }
    state.uploading = null;
    setBar("upload-bar", "upload-pct", 1);
    state.audio.set(job.id, { url: URL.createObjectURL(file), name: file.name });
    state.job = job.id;
    loadJobs(true).catch(() => {});
    await watchJob(job.id, file.name);
}

async function watchJob(id, name) {
    let last = "";
    while (state.job === id) {
        let job;
        try {
            job = await apiJson(`/v1/jobs/${encodeURIComponent(id)}`);
        } catch (err) {
            setStatus("upload-status", `Lost the job: ${err.message}`, true);
            break;
        }
        if (job.status === "queued") {
            setBar("job-bar", "job-pct", null);
            $("job-pct").textContent = "queued";
        } else {
            setBar("job-bar", "job-pct", job.status === "succeeded" ? 1 : job.progress || 0);
        }
        if (job.status !== last) {
            last = job.status;
            const words = { queued: "Waiting in the queue…", running: "Transcribing…" };
            if (words[job.status])
                setStatus("upload-status", `${name}: ${words[job.status]}`);
        }
        if (job.status === "succeeded") {
            endWatch();
            await showResult(id, name);
            setStatus("upload-status", `${name}: done. The transcript is below.`);
            loadJobs(true).catch(() => {});
            return;
        }
        if (job.status === "failed" || job.status === "cancelled") {
            endWatch();
            const why = job.error && job.error.message ? `: ${job.error.message}` : "";
            setStatus("upload-status", `${name}: ${job.status}${why}`, job.status === "failed");
            loadJobs(true).catch(() => {});
            return;
        }
        await sleep(POLL_MS);
    }
    endWatch();
}

function endWatch() {
    state.job = null;
    $("cancel").hidden = true;
    $("submit").disabled = !state.file;
}

async function cancelJob() {
    if (state.uploading) {
        state.uploading.abort();
        return;
    }
    if (!state.job)
        return;
    try {
        await api(`/v1/jobs/${encodeURIComponent(state.job)}`, { method: "DELETE" });
    } catch (err) {
        setStatus("upload-status", `Cancel failed: ${err.message}`, true);
    }
}

/* ---------- transcript ---------- */

async function showResult(id, name) {
    let r;
    try {
        r = await apiJson(`/v1/jobs/${encodeURIComponent(id)}/result?format=verbose_json`);
    } catch (err) {
        setStatus("upload-status", `Could not load the transcript: ${err.message}`, true);
        return;
    }
    const media = state.audio.get(id);
    state.shown = { id, name: name || id };
    const segs = Array.isArray(r.segments) ? r.segments : [];
    const bits = [name || id];
    if (r.language)
        bits.push(r.language);
    if (Number.isFinite(r.duration))
        bits.push(fmtTime(r.duration));
    bits.push(`${segs.length} segment${segs.length === 1 ? "" : "s"}`);
    $("result-meta").textContent = bits.join(" · ");

    $("result-hint").classList.remove("error");
    const player = $("player");
    if (media) {
        if (player.src !== media.url)
            player.src = media.url;
        player.hidden = false;
        $("result-hint").textContent = "Select a segment to play the audio from there.";
    } else {
        player.pause();
        player.removeAttribute("src");
        player.hidden = true;
        $("result-hint").textContent = "The audio of this job is not in this browser tab, so segments do not play.";
    }

    const list = $("segments");
    list.replaceChildren();
    if (segs.length === 0 && r.text)
        segs.push({ id: 0, start: 0, end: r.duration || 0, text: r.text });
    if (segs.length === 0)
        list.append(el("li", { class: "hint", text: "No speech was found." }));
    for (const s of segs) {
        const time = `${fmtTime(s.start)} – ${fmtTime(s.end)}`;
        const kids = [el("span", { class: "seg-time", text: time }),
            el("span", { class: "seg-text", text: (s.text || "").trim() })];
        const item = media
            ? el("button", { type: "button", class: "seg", "aria-label": `${time}: play from here. ${(s.text || "").trim()}` }, ...kids)
            : el("div", { class: "seg" }, ...kids);
        item.dataset.start = s.start;
        item.dataset.end = s.end;
        if (media)
            item.addEventListener("click", () => playFrom(s.start));
        list.append(el("li", {}, item));
    }
    showExtraction(r.extraction);
    $("result").hidden = false;
}

/* A job that asked for structured extraction: its record rides in verbose_json. */
function showExtraction(ex) {
    const box = $("extraction");
    box.hidden = !ex;
    if (!ex)
        return;
    const bits = [ex.template || "inline schema", ex.model, ex.status];
    if (ex.usage)
        bits.push(`${ex.usage.input_tokens} + ${ex.usage.output_tokens} tokens`);
    $("extraction-meta").textContent = bits.filter(Boolean).join(" · ");
    $("extraction-meta").classList.toggle("error", ex.status !== "succeeded");
    $("extraction-data").textContent = ex.status === "succeeded"
        ? JSON.stringify(ex.data, null, 2)
        : (ex.error && ex.error.message) || "The extraction failed.";
}

function playFrom(sec) {
    const player = $("player");
    player.currentTime = sec;
    player.play().catch(() => {
        /* autoplay refused or no audio device: the position is set anyway */
    });
    markCurrent(sec);
}

function markCurrent(t) {
    for (const b of $("segments").querySelectorAll(".seg")) {
        const on = t >= Number(b.dataset.start) && t < Number(b.dataset.end);
        b.classList.toggle("current", on);
    }
}

async function download(format, ext) {
    if (!state.shown)
        return;
    const { id, name } = state.shown;
    try {
        const res = await api(`/v1/jobs/${encodeURIComponent(id)}/result?format=${format}`);
        const blob = await res.blob();
        const url = URL.createObjectURL(blob);
        const base = name.replace(/\.[^./\\]+$/, "") || id;
        const a = el("a", { href: url, download: `${base}.${ext}` });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
        $("result-hint").textContent = `Download failed: ${err.message}`;
        $("result-hint").classList.add("error");
    }
}

/* ---------- job list ---------- */

function jobItem(j) {
    const name = j.filename || j.id;
    const info = [];
    if (j.created_at)
        info.push(new Date(j.created_at * 1000).toLocaleString());
    if (j.timings && j.timings.audio_seconds)
        info.push(fmtTime(j.timings.audio_seconds));
    if (j.status === "running")
        info.push(`${Math.round((j.progress || 0) * 100)}%`);
    if (j.status === "failed" && j.error && j.error.message)
        info.push(j.error.message);
    if (j.results_expired)
        info.push("results deleted");
    const actions = el("div", { class: "job-actions" });
    if (j.status === "succeeded" && !j.results_expired) {
        actions.append(el("button", {
            type: "button", class: "secondary", text: "Open",
            "aria-label": `Open the transcript of ${name}`,
            onclick: () => showResult(j.id, name).then(() => $("result").scrollIntoView({ block: "start" })),
        }));
    }
    if (j.status === "queued" || j.status === "running") {
        actions.append(el("button", {
            type: "button", class: "secondary", text: "Cancel",
            "aria-label": `Cancel the job ${name}`,
            onclick: async () => {
                try {
                    await api(`/v1/jobs/${encodeURIComponent(j.id)}`, { method: "DELETE" });
                } catch (err) {
                    setStatus("upload-status", `Cancel failed: ${err.message}`, true);
                }
                loadJobs(true).catch(() => {});
            },
        }));
    }
    return el("li", { class: "job", "data-id": j.id },
        el("span", { class: "job-name" }, el("span", { class: `badge ${j.status}`, text: j.status }), name),
        el("span", { class: "job-info", text: info.join(" · ") }),
        actions);
}

let jobsTimer = null;

async function loadJobs(reset) {
    const list = $("job-list");
    let q = `/v1/jobs?limit=${JOBS_PAGE}`;
    if (!reset && state.jobsAfter)
        q += `&after=${encodeURIComponent(state.jobsAfter)}`;
    let page;
    try {
        page = await apiJson(q);
    } catch (err) {
        $("jobs-empty").hidden = false;
        $("jobs-empty").textContent = err.status === 401
            ? "Enter the API key to see the jobs." : `Could not list the jobs: ${err.message}`;
        throw err;
    }
    if (reset)
        list.replaceChildren();
    const data = page.data || [];
    for (const j of data)
        list.append(jobItem(j));
    state.jobsAfter = page.last_id || state.jobsAfter;
    $("jobs-more").hidden = !page.has_more;
    $("jobs-empty").hidden = list.children.length > 0;
    $("jobs-empty").textContent = "No jobs yet.";
    /* keep the first page fresh while something on it is still moving */
    clearTimeout(jobsTimer);
    const moving = data.some((j) => j.status === "queued" || j.status === "running");
    if (reset && moving && !state.job)
        jobsTimer = setTimeout(() => loadJobs(true).catch(() => {}), 3000);
}

/* ---------- live recording ---------- */

function renderLive() {
    const box = $("live-text");
    const segs = [...state.liveSegs.values()].sort((a, b) => (a.start || 0) - (b.start || 0));
    box.replaceChildren();
    for (const s of segs) {
        const text = (s.text || "").trim();
        if (!text)
            continue;
        const span = el("span", { class: s.final ? "final" : "partial", text: `${text} ` });
        if (!s.final)
            span.setAttribute("aria-hidden", "true"); /* announce text once it is final */
        box.append(span);
    }
    box.scrollTop = box.scrollHeight;
}

function onLiveSegments(segs) {
    const seen = new Set();
    for (const s of segs) {
        const key = s.id ?? `t${s.start}`;
        seen.add(key);
        state.liveSegs.set(key, s);
    }
    /* a partial the server no longer sends was replaced by what it did send */
    for (const [k, s] of state.liveSegs)
        if (!s.final && !seen.has(k))
            state.liveSegs.delete(k);
    renderLive();
}

function onLiveDone(msg) {
    if (Array.isArray(msg.segments) && msg.segments.length) {
        state.liveSegs = new Map(msg.segments.map((s, i) => [s.id ?? i, { ...s, final: true }]));
    } else if (typeof msg.text === "string" && msg.text.trim() &&
               ![...state.liveSegs.values()].some((s) => s.final)) {
        state.liveSegs = new Map([[0, { id: 0, start: 0, text: msg.text, final: true }]]);
    } else {
        for (const s of state.liveSegs.values())
            s.final = true;
    }
    renderLive();
    setStatus("live-status", "Done.");
}

function setRecording(on) {
    const b = $("record");
    /* the label says what a press does (Record / Stop); no aria-pressed on top of that */
    b.dataset.recording = on ? "true" : "false";
    $("record-label").textContent = on ? "Stop" : "Record";
}

async function toggleRecord() {
    const b = $("record");
    if (state.live) {
        b.disabled = true;
        await state.live.stop();
        return;
    }
    const why = liveSupported();
    if (why) {
        setStatus("live-status", `Cannot record: ${why}.`, true);
        return;
    }
    state.liveSegs = new Map();
    renderLive();
    const session = new LiveSession({
        onState: (s) => {
            const text = {
                connecting: "Connecting…",
                listening: "Listening… speak now.",
                finishing: "Finishing the last words…",
            }[s];
            if (text)
                setStatus("live-status", text);
            if (s === "closed" && state.live === session) {
                state.live = null;
                setRecording(false);
                updateRecordButton();
            }
        },
        onSegments: onLiveSegments,
        onDone: onLiveDone,
        onError: (m) => setStatus("live-status", `Error: ${m}`, true),
    });
    state.live = session;
    setRecording(true);
    const config = { task: "transcribe" };
    const lang = $("live-language").value.trim().toLowerCase();
    if (lang && lang !== "auto")
        config.language = lang;
    try {
        await session.start(config);
    } catch (err) {
        state.live = null;
        setRecording(false);
        updateRecordButton();
        setStatus("live-status", `Cannot record: ${err.message}`, true);
    }
}

/* ---------- start ---------- */

function init() {
    initAuth();
    initDrop();
    $("upload-form").addEventListener("submit", submitJob);
    $("cancel").addEventListener("click", cancelJob);
    $("record").addEventListener("click", toggleRecord);
    for (const b of document.querySelectorAll(".downloads button"))
        b.addEventListener("click", () => download(b.dataset.format, b.dataset.ext));
    $("player").addEventListener("timeupdate", () => markCurrent($("player").currentTime));
    $("jobs-refresh").addEventListener("click", () => loadJobs(true).catch(() => {}));
    $("jobs-more").addEventListener("click", () => loadJobs(false).catch(() => {}));
    initSpeak();
    $("read-aloud").addEventListener("click", () =>
        readAloud([...$("segments").querySelectorAll(".seg-text")].map((e) => e.textContent).join(" ")));
    checkHealth();
    loadJobs(true).catch(() => {});
    loadTemplates().catch(() => {});
}

init();
