/*
 * page.test.mjs - browser test of scribed's web page in real Chromium
 * (Debian's /usr/bin/chromium driven by playwright-core; no bundled browser).
 * Started by tests/integration/test_60_web_page.py, which runs `scribed serve`
 * with the micro model and passes its address. It uploads a file and waits
 * for the transcript, plays from a segment, downloads txt/srt/vtt/json,
 * records through Chromium's fake microphone (skipped while /v1/realtime
 * answers 404), checks the key field on a 401, keyboard reach, the layout
 * at 1280/390/360 px with screenshots, and that nothing leaves localhost.
 * The micro model's text is random: only its presence and times are checked.
 *
 *   SCRIBED_URL=http://127.0.0.1:PORT node --test tests/browser/page.test.mjs
 * Env: SCRIBED_URL (required), UPLOAD_WAV, MIC_WAV (default: ../shared
 * reference WAVs), SCREENSHOT_DIR (default tests/browser/screenshots),
 * CHROMIUM (default /usr/bin/chromium).
 */

import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
const SHARED = process.env.SCRIBED_SHARED || path.resolve(REPO, "..", "shared");
const SERVER = (process.env.SCRIBED_URL || "").replace(/\/$/, "");
let BASE = SERVER; /* where the browser goes: scribed, or the stand-in below */
const UPLOAD_WAV = process.env.UPLOAD_WAV || path.join(SHARED, "reference", "a_short.wav");
const MIC_WAV = process.env.MIC_WAV || path.join(SHARED, "reference", "b_sentence.wav");
const SHOTS = process.env.SCREENSHOT_DIR || path.join(HERE, "screenshots");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WEB_DIR = path.join(REPO, "web");

const external = [];   /* requests to anything but the server under test */
const pageErrors = []; /* uncaught exceptions and console errors, per page */
let browser;
let standIn = null; /* while scribed does not serve "/": web/ from disk, the rest proxied */

const MIME = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
};

function isApiPath(p) {
    return p.startsWith("/v1/") || p === "/health" || p === "/metrics" || p === "/inference";
}

/*
 * A stand-in front for a scribed that does not serve its page yet: web/ files
 * from disk, every API path (and the WebSocket upgrade) passed through to
 * scribed. Same origin for the page, as when scribed serves it itself.
 */
function startStandIn() {
    const target = new URL(SERVER);
    const server = http.createServer((req, res) => {
        const url = new URL(req.url, "http://x");
        if (isApiPath(url.pathname)) {
            const up = http.request({ host: target.hostname, port: target.port, method: req.method,
                path: req.url, headers: req.headers }, (r) => {
                res.writeHead(r.statusCode, r.headers);
                r.pipe(res);
            });
            up.on("error", () => res.destroy());
            req.pipe(up);
            return;
        }
        const rel = url.pathname === "/" ? "index.html" : url.pathname.slice(1);
        const file = path.join(WEB_DIR, rel);
        if (!file.startsWith(WEB_DIR + path.sep) || !fs.existsSync(file)) {
            res.writeHead(404).end("not found");
            return;
        }
        res.writeHead(200, { "Content-Type": MIME[path.extname(file)] || "application/octet-stream" });
        res.end(fs.readFileSync(file));
    });
    server.on("upgrade", (req, sock, head) => {
        const up = net.connect(Number(target.port), target.hostname, () => {
            let h = `${req.method} ${req.url} HTTP/1.1\r\n`;
            for (let i = 0; i < req.rawHeaders.length; i += 2)
                h += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
            up.write(h + "\r\n");
            up.write(head);
            sock.pipe(up).pipe(sock);
        });
        up.on("error", () => sock.destroy());
        sock.on("error", () => up.destroy());
    });
    return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

before(async () => {
    assert.ok(SERVER, "set SCRIBED_URL to the address of a running `scribed serve`");
    const root = await fetch(`${SERVER}/`);
    if (root.status === 404) {
        standIn = await startStandIn();
        BASE = `http://127.0.0.1:${standIn.address().port}`;
        console.log("# scribed answers 404 at / : web/ is served from disk by a stand-in that "
            + "proxies the API (the server needs GET / and GET /<asset> -> web_asset_find)");
    }
    fs.mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            `--use-file-for-fake-audio-capture=${MIC_WAV}`,
        ],
    });
});

after(async () => {
    if (browser)
        await browser.close();
    if (standIn)
        standIn.close();
});

/* A page in a fresh context (empty storage) with the external-request guard. */
async function newPage(viewport = { width: 1280, height: 900 }) {
    const context = await browser.newContext({ viewport, acceptDownloads: true });
    const base = new URL(BASE);
    await context.route("**/*", async (route) => {
        const url = new URL(route.request().url());
        if (url.host !== base.host) {
            external.push(url.href);
            return route.abort("blockedbyclient");
        }
        return route.continue();
    });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
        if (m.type() === "error")
            errors.push(`console: ${m.text()}`);
    });
    page.on("websocket", (ws) => {
        if (new URL(ws.url()).host !== base.host)
            external.push(ws.url());
    });
    pageErrors.push(errors);
    await page.goto(`${BASE}/`);
    await page.waitForFunction(() => document.getElementById("health-text").textContent.startsWith("Ready"));
    return { page, context, errors };
}

/* Width and height from a PNG's IHDR chunk. */
function pngSize(file) {
    const b = fs.readFileSync(file);
    assert.equal(b.toString("ascii", 1, 4), "PNG", `${file} is not a PNG`);
    return { width: b.readUInt32BE(16), height: b.readUInt32BE(20), bytes: b.length };
}

async function uploadAndWait(page) {
    await page.setInputFiles("#file", UPLOAD_WAV);
    await page.click("#submit");
    await page.waitForSelector("#segments .seg", { timeout: 120000 });
}

/* 16-bit mono samples of a PCM WAV file (the data chunk). */
function wavSamples(file) {
    const b = fs.readFileSync(file);
    let o = 12;
    while (o + 8 <= b.length) {
        const id = b.toString("ascii", o, o + 4);
        const n = b.readUInt32LE(o + 4);
        if (id === "data")
            return new Int16Array(b.buffer.slice(b.byteOffset + o + 8, b.byteOffset + o + 8 + n));
        o += 8 + n + (n & 1);
    }
    throw new Error(`${file}: no data chunk`);
}

/*
 * How well one second of what the page sent matches the microphone's source
 * file (looped by Chromium): the best normalized correlation over all
 * alignments, found coarsely on 10 ms energy envelopes, then per sample.
 */
function matchSource(sent, src) {
    const W = 16000;
    const r0 = Math.min(8000, sent.length - W);
    assert.ok(r0 >= 0, `only ${sent.length} samples were sent`);
    const at = (i) => src[((i % src.length) + src.length) % src.length];
    const env = (get, n) => Array.from({ length: n }, (_, k) => {
        let e = 0;
        for (let i = 0; i < 160; i++)
            e += get(k * 160 + i) ** 2;
        return Math.sqrt(e);
    });
    const we = env((i) => sent[r0 + i], W / 160);
    const se = env(at, Math.ceil(src.length / 160));
    let coarse = 0;
    let bestE = -1;
    for (let k = 0; k < se.length; k++) {
        let num = 0;
        let den = 0;
        for (let i = 0; i < we.length; i++) {
            const v = se[(k + i) % se.length];
            num += v * we[i];
            den += v * v;
        }
        const score = num / Math.sqrt(den + 1e-9);
        if (score > bestE) {
            bestE = score;
            coarse = k * 160;
        }
    }
    let best = -1;
    for (let off = coarse - 320; off <= coarse + 320; off++) {
        let num = 0;
        let a2 = 0;
        let b2 = 0;
        for (let i = 0; i < W; i++) {
            const a = sent[r0 + i];
            const b = at(off + i);
            num += a * b;
            a2 += a * a;
            b2 += b * b;
        }
        best = Math.max(best, num / Math.sqrt(a2 * b2 + 1e-9));
    }
    return best;
}

/* Layout facts the screenshots should show, measured in the page. */
async function layout(page) {
    return page.evaluate(() => {
        const box = (id) => document.getElementById(id).getBoundingClientRect();
        const vw = document.documentElement.clientWidth;
        const offenders = [...document.querySelectorAll("button, input, select, progress, audio, .card, .seg")]
            .filter((e) => e.offsetParent !== null)
            .map((e) => ({ e, r: e.getBoundingClientRect() }))
            .filter(({ r }) => r.left < -1 || r.right > vw + 1)
            .map(({ e, r }) => `${e.tagName}#${e.id}.${e.className} ${r.left}-${r.right}`);
        return {
            vw,
            scrollWidth: document.documentElement.scrollWidth,
            upload: box("upload").toJSON(),
            live: box("live").toJSON(),
            offenders,
        };
    });
}

test("the page loads with its local assets and shows the model", async () => {
    const { page, context, errors } = await newPage();
    assert.match(await page.title(), /scribed/);
    assert.match(await page.textContent("#health-text"), /^Ready · /);
    /* no absolute URL to another host anywhere in the markup */
    const foreign = await page.evaluate(() => [...document.querySelectorAll("[src],[href]")]
        .map((e) => e.src || e.href).filter((u) => u && new URL(u, location.href).host !== location.host));
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, []);
    await context.close();
});

/* A second server without a model (SCRIBED_URL_NOMODEL): nothing to record with. */
test("Record is disabled while no model is loaded", async (t) => {
    const noModel = (process.env.SCRIBED_URL_NOMODEL || "").replace(/\/$/, "");
    if (!noModel) {
        t.skip("SCRIBED_URL_NOMODEL not set");
        return;
    }
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const host = new URL(noModel).host;
    await context.route("**/*", (route) => (new URL(route.request().url()).host === host
        ? route.continue() : route.abort("blockedbyclient")));
    const page = await context.newPage();
    await page.goto(`${noModel}/`);
    await page.waitForFunction(() => document.getElementById("health-text").textContent.startsWith("Unavailable"));
    assert.equal(await page.isDisabled("#record"), true);
    assert.match(await page.getAttribute("#record", "title"), /needs a loaded model/);
    await context.close();
    /* with a model the same button is enabled */
    const ok = await newPage();
    assert.equal(await ok.page.isDisabled("#record"), false);
    await ok.context.close();
});

test("upload a file: progress, transcript with segment times, play from a segment, downloads", async () => {
    const { page, context, errors } = await newPage();
    await uploadAndWait(page);

    assert.equal(await page.getAttribute("#upload-bar", "value"), "1");
    assert.equal(await page.textContent("#job-pct"), "100%");
    assert.match(await page.textContent("#upload-status"), /done/);

    const segs = await page.$$eval("#segments .seg", (els) => els.map((e) => ({
        time: e.querySelector(".seg-time").textContent,
        text: e.querySelector(".seg-text").textContent,
        start: Number(e.dataset.start),
    })));
    assert.ok(segs.length >= 1, "at least one segment");
    for (const s of segs)
        assert.match(s.time, /^\d+:\d\d\.\d – \d+:\d\d\.\d$/, `segment time "${s.time}"`);
    assert.ok(segs.some((s) => s.text.trim().length > 0), "some transcript text");

    /* clicking a segment seeks the audio of the chosen file */
    await page.waitForFunction(() => document.getElementById("player").readyState >= 1);
    const target = segs[segs.length - 1];
    await page.click(`#segments li:last-child .seg`);
    const pos = await page.evaluate(() => {
        const p = document.getElementById("player");
        return { t: p.currentTime, d: p.duration };
    });
    assert.ok(Math.abs(pos.t - Math.min(target.start, pos.d)) < 0.35,
        `player at ${pos.t}, segment starts at ${target.start} (duration ${pos.d})`);

    /* downloads: each format through a Blob link */
    const expect = {
        SRT: { ext: ".srt", re: /^1\r?\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\r?\n/ },
        VTT: { ext: ".vtt", re: /^WEBVTT/ },
        TXT: { ext: ".txt", re: /\S/ },
        JSON: { ext: ".json", re: /^\{/ },
    };
    for (const [label, want] of Object.entries(expect)) {
        const [dl] = await Promise.all([
            page.waitForEvent("download"),
            page.click(`.downloads button:text-is("${label}")`),
        ]);
        assert.equal(dl.suggestedFilename(), path.basename(UPLOAD_WAV, ".wav") + want.ext);
        const body = fs.readFileSync(await dl.path(), "utf8");
        assert.match(body, want.re, `${label} download:\n${body.slice(0, 200)}`);
        if (label === "JSON")
            assert.ok(JSON.parse(body).segments.length >= 1);
    }

    /* the job list shows the job, and Open loads its transcript */
    await page.waitForSelector("#job-list .job .badge.succeeded");
    const name = await page.textContent("#job-list .job:first-child .job-name");
    assert.match(name, /succeeded/);
    assert.ok(name.includes(path.basename(UPLOAD_WAV)));
    await page.click("#job-list .job:first-child button:text-is('Open')");
    await page.waitForSelector("#segments .seg");

    /* desktop screenshot: upload and live side by side, nothing wider than the page */
    const l = await layout(page);
    assert.ok(l.scrollWidth <= l.vw, `horizontal overflow at 1280: ${l.scrollWidth}`);
    assert.deepEqual(l.offenders, []);
    assert.ok(Math.abs(l.upload.top - l.live.top) < 2 && l.live.left > l.upload.right,
        "two columns on a desktop");
    const shot = path.join(SHOTS, "desktop-1280.png");
    await page.screenshot({ path: shot, fullPage: true });
    const size = pngSize(shot);
    assert.equal(size.width, 1280);
    assert.ok(size.bytes > 20000, "the desktop screenshot is not blank");

    /* phone width: one column, no sideways scrolling */
    for (const width of [390, 360]) {
        await page.setViewportSize({ width, height: 844 });
        const p = await layout(page);
        assert.ok(p.scrollWidth <= width, `horizontal overflow at ${width}: ${p.scrollWidth}`);
        assert.deepEqual(p.offenders, [], `elements outside the ${width} px viewport`);
        assert.ok(p.live.top >= p.upload.bottom, `one column at ${width}`);
        if (width === 390) {
            const phone = path.join(SHOTS, "phone-390.png");
            await page.screenshot({ path: phone, fullPage: true });
            const ps = pngSize(phone);
            assert.equal(ps.width, 390);
            assert.ok(ps.bytes > 15000, "the phone screenshot is not blank");
        }
    }
    assert.deepEqual(errors, []);
    await context.close();
});

test("speak: voices listed, text spoken, played and downloadable; a transcript read aloud", async () => {
    const { page, context, errors } = await newPage();
    await page.waitForFunction(() => document.querySelectorAll("#speak-voice option").length >= 5);
    assert.equal(await page.inputValue("#speak-voice"), "flite-rms"); /* the default voice */
    await page.fill("#speak-text", "Hello from the speak panel.");
    await page.selectOption("#speak-format", "wav");
    await page.click("#speak-submit");
    await page.waitForFunction(() => /KB of wav/.test(document.getElementById("speak-status").textContent));
    await page.waitForFunction(() => document.getElementById("speak-player").readyState >= 1);
    const d = await page.evaluate(() => document.getElementById("speak-player").duration);
    assert.ok(d > 0.5 && d < 10, `spoken audio lasts ${d} s`);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#speak-download")]);
    assert.equal(download.suggestedFilename(), "speech.wav");
    const head = fs.readFileSync(await download.path()).subarray(0, 4).toString();
    assert.equal(head, "RIFF");
    /* an error shows its message */
    await page.fill("#speak-text", "x".repeat(10));
    await page.evaluate(() => { document.getElementById("speak-text").value = ""; });
    await page.click("#speak-submit");
    assert.match(await page.textContent("#speak-status"), /Type something/);
    /* the transcript shown is read aloud */
    await uploadAndWait(page);
    await page.click("#read-aloud");
    await page.waitForFunction(() => document.getElementById("speak-text").value.length > 0);
    await page.waitForFunction(() => /KB of/.test(document.getElementById("speak-status").textContent)
        || document.getElementById("speak-status").classList.contains("error"));
    assert.deepEqual(errors, []);
    await context.close();
});

test("a file dropped on the drop zone is chosen", async () => {
    const { page, context, errors } = await newPage();
    const bytes = fs.readFileSync(UPLOAD_WAV).toString("base64");
    const dt = await page.evaluateHandle((b64) => {
        const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const d = new DataTransfer();
        d.items.add(new File([raw], "dropped.wav", { type: "audio/wav" }));
        return d;
    }, bytes);
    await page.dispatchEvent("#drop", "dragover", { dataTransfer: dt });
    await page.dispatchEvent("#drop", "drop", { dataTransfer: dt });
    assert.match(await page.textContent("#file-name"), /^dropped\.wav \(/);
    assert.equal(await page.isEnabled("#submit"), true);
    await page.click("#submit");
    await page.waitForSelector("#segments .seg", { timeout: 120000 });
    assert.match(await page.textContent("#result-meta"), /^dropped\.wav/);
    assert.deepEqual(errors, []);
    await context.close();
});

test("a file the server refuses gets its error message, and the form stays usable", async () => {
    const { page, context } = await newPage();
    await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not audio") });
    await page.click("#submit");
    await page.waitForSelector("#upload-status.error");
    const msg = await page.textContent("#upload-status");
    assert.match(msg, /^Upload failed: .*(not accepted|audio)/, msg);
    assert.equal(await page.isEnabled("#submit"), true);
    assert.equal(await page.isHidden("#cancel"), true);
    assert.equal(await page.isHidden("#result"), true);
    await context.close(); /* the 415 in the console is expected here */
});

test("record via the fake microphone: partial then final text", async (t) => {
    const probe = await fetch(`${SERVER}/v1/realtime`);
    if (probe.status === 404) {
        t.skip("skipped: /v1/realtime not available");
        return;
    }
    const { page, context, errors } = await newPage();
    const sockets = [];
    page.on("websocket", (ws) => {
        const s = { url: ws.url(), sent: 0, text: [], received: [] };
        ws.on("framesent", (f) => {
            if (typeof f.payload === "string")
                s.text.push(f.payload);
            else
                s.sent += f.payload.length;
        });
        ws.on("framereceived", (f) => s.received.push(String(f.payload)));
        sockets.push(s);
    });
    await page.click("#record");
    assert.equal(await page.getAttribute("#record", "data-recording"), "true");
    await page.waitForFunction(() => /Listening/.test(document.getElementById("live-status").textContent),
        null, { timeout: 20000 });
    /* speak for a while: text (partial or final) should show up while recording */
    await page.waitForFunction(() => document.querySelector("#live-text span"), null, { timeout: 60000 })
        .catch(() => {});
    await page.waitForTimeout(3000);
    await page.click("#record"); /* stop: the server finishes and sends "done" */
    await page.waitForFunction(() => document.getElementById("record").dataset.recording === "false"
        && !document.getElementById("record").disabled, null, { timeout: 90000 });
    const finals = await page.$$eval("#live-text .final", (els) => els.map((e) => e.textContent.trim()));
    const status = await page.textContent("#live-status");
    assert.ok(finals.some((x) => x.length > 0), `final text after stopping (status: ${status})`);
    assert.equal(sockets.length, 1);
    assert.match(sockets[0].url, /\/v1\/realtime/);
    const config = JSON.parse(sockets[0].text[0]);
    assert.equal(config.sample_rate, 16000);
    assert.equal(config.format, "pcm_s16le");
    assert.ok(sockets[0].sent > 16000 * 2, `sent ${sockets[0].sent} bytes of PCM (> 1 s)`);
    assert.ok(sockets[0].text.some((x) => /"type":"end"/.test(x)), "sent {type:end}");
    assert.ok(sockets[0].received.some((x) => /"type":\s*"ready"/.test(x)));
    assert.ok(sockets[0].received.some((x) => /"type":\s*"done"/.test(x)));
    await page.screenshot({ path: path.join(SHOTS, "record-1280.png") });
    assert.deepEqual(errors, []);
    await context.close();
});

/*
 * The client half of the realtime protocol against a scripted server
 * (Playwright's routeWebSocket), so the recorder is tested whether or not
 * scribed has /v1/realtime: config first, 16 kHz s16le audio at the real
 * rate, partial text grey, final text black, {"type":"end"} -> "done".
 */
test("record against a scripted /v1/realtime: 16 kHz PCM out, partial grey, final black", async (t) => {
    const { page, context, errors } = await newPage();
    const seen = { config: null, bytes: 0, firstAt: 0, lastAt: 0, end: false, sumSq: 0, n: 0, pcm: [] };
    await context.routeWebSocket(/\/v1\/realtime/, (ws) => {
        let step = 0;
        ws.onMessage((m) => {
            if (typeof m === "string") {
                const msg = JSON.parse(m);
                if (!seen.config) {
                    seen.config = msg;
                    ws.send(JSON.stringify({ type: "ready" }));
                } else if (msg.type === "end") {
                    seen.end = true;
                    ws.send(JSON.stringify({
                        type: "done", text: "alpha beta gamma",
                        segments: [{ id: 0, start: 0, end: 1, text: " alpha", final: true },
                            { id: 1, start: 1, end: 2, text: " beta", final: true },
                            { id: 2, start: 2, end: 3, text: " gamma", final: true }],
                    }));
                    ws.close();
                }
                return;
            }
            const now = Date.now();
            if (!seen.firstAt)
                seen.firstAt = now;
            seen.lastAt = now;
            seen.bytes += m.length;
            seen.pcm.push(Buffer.from(m));
            for (let i = 0; i + 1 < m.length; i += 2) {
                const v = m.readInt16LE(i) / 32768;
                seen.sumSq += v * v;
                seen.n++;
            }
            /* after ~1 s and ~2 s of audio: one final and one partial segment */
            if (step === 0 && seen.bytes >= 32000) {
                step = 1;
                ws.send(JSON.stringify({ type: "segments", segments: [
                    { id: 0, start: 0, end: 1, text: " alpha", final: true },
                    { id: 1, start: 1, end: 2, text: " bet", final: false }] }));
            } else if (step === 1 && seen.bytes >= 64000) {
                step = 2;
                ws.send(JSON.stringify({ type: "segments", segments: [
                    { id: 1, start: 1, end: 2, text: " beta", final: true },
                    { id: 2, start: 2, end: 3, text: " gam", final: false }] }));
            }
        });
    });
    await page.focus("#record");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#live-text .partial:text-is('gam')", { timeout: 30000 });
    const colours = await page.evaluate(() => {
        const c = (sel) => getComputedStyle(document.querySelector(sel)).color;
        return { final: c("#live-text .final"), partial: c("#live-text .partial") };
    });
    assert.equal(colours.final, "rgb(17, 17, 17)", "final text is black");
    assert.equal(colours.partial, "rgb(107, 114, 128)", "partial text is grey");
    assert.equal(await page.textContent("#live-text"), "alpha beta gam ");
    assert.equal(await page.getAttribute("#live-text .partial", "aria-hidden"), "true");
    await page.screenshot({ path: path.join(SHOTS, "live-1280.png") });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator("#live").screenshot({ path: path.join(SHOTS, "live-390.png") });
    await page.keyboard.press("Enter"); /* focus is still on the button: stop */
    await page.waitForFunction(() => document.getElementById("record").dataset.recording === "false");
    assert.equal(await page.textContent("#live-text"), "alpha beta gamma ");
    assert.equal(await page.$$eval("#live-text .partial", (e) => e.length), 0);
    assert.match(await page.textContent("#live-status"), /Done/);

    assert.deepEqual(seen.config, { task: "transcribe", sample_rate: 16000, format: "pcm_s16le" });
    assert.ok(seen.end, "sent {type:end}");
    const secs = (seen.lastAt - seen.firstAt) / 1000;
    const rate = seen.bytes / 2 / secs;
    assert.ok(secs > 1.5 && rate > 12000 && rate < 20000,
        `audio arrives at ~16000 samples/s (got ${Math.round(rate)} over ${secs.toFixed(1)} s)`);
    const rms = Math.sqrt(seen.sumSq / seen.n);
    const all = Buffer.concat(seen.pcm);
    const sent = new Int16Array(all.buffer.slice(all.byteOffset, all.byteOffset + (all.length & ~1)));
    const corr = matchSource(sent, wavSamples(MIC_WAV));
    t.diagnostic(`PCM: ${seen.bytes} bytes in ${secs.toFixed(2)} s = ${Math.round(rate)} samples/s, `
        + `RMS ${rms.toFixed(4)}, correlation with the microphone's source ${corr.toFixed(4)}`);
    assert.ok(corr > 0.95, `the audio sent is the microphone's, at 16 kHz (correlation ${corr.toFixed(4)})`);
    assert.ok(rms > 0.005, `the fake microphone's speech came through (RMS ${rms.toFixed(4)})`);
    assert.deepEqual(errors, []);
    await context.close();
});

test("a 401 shows the API key field; the saved key is sent as a Bearer token", async () => {
    const { page, context } = await newPage();
    const seen = [];
    /* the server has no auth yet: play the part of one that wants the key "sekrit" */
    await context.route(/\/v1\/jobs/, async (route) => {
        const auth = route.request().headers().authorization || "";
        seen.push(auth);
        if (auth !== "Bearer sekrit") {
            return route.fulfill({
                status: 401, contentType: "application/json",
                body: JSON.stringify({ error: { message: "a valid API key is required",
                    type: "authentication_error", param: null, code: "invalid_api_key" } }),
            });
        }
        return route.continue();
    });
    await page.click("#jobs-refresh");
    await page.waitForSelector("#auth:not([hidden])");
    assert.match(await page.textContent("#jobs-empty"), /API key/);
    await page.fill("#api-key", "sekrit");
    await page.press("#api-key", "Enter");
    await page.waitForSelector("#auth", { state: "hidden" });
    assert.equal(await page.evaluate(() => localStorage.getItem("scribed.apiKey")), "sekrit");
    assert.equal(seen[seen.length - 1], "Bearer sekrit");
    /* a reload keeps the key */
    const n = seen.length;
    await page.reload();
    await page.waitForFunction(() => document.getElementById("job-list").children.length > 0
        || /No jobs/.test(document.getElementById("jobs-empty").textContent));
    assert.ok(seen.length > n, "the reloaded page listed the jobs");
    assert.equal(seen[seen.length - 1], "Bearer sekrit");
    assert.equal(await page.isHidden("#auth"), true);
    await context.close();
});

test("keyboard: Tab reaches every control, focus is visible, Space opens the file chooser", async () => {
    const { page, context, errors } = await newPage();
    /*
     * Listen for the chooser before any key is pressed: Playwright turns on
     * file-chooser interception asynchronously when the first listener is
     * added, and a Space that reaches Chromium before that opens a native
     * dialog that never becomes an event (seen once under load).
     */
    const choosers = [];
    page.on("filechooser", (c) => choosers.push(c));
    const reached = new Set();
    let outline = {};
    for (let i = 0; i < 30; i++) {
        await page.keyboard.press("Tab");
        const f = await page.evaluate(() => {
            const e = document.activeElement;
            const cs = getComputedStyle(e.id === "file" ? e.closest("label") : e);
            return { id: e.id, style: cs.outlineStyle, width: cs.outlineWidth };
        });
        if (f.id) {
            reached.add(f.id);
            outline[f.id] = f;
        }
    }
    for (const id of ["file", "record", "live-language", "jobs-refresh"])
        assert.ok(reached.has(id), `Tab reaches #${id} (reached: ${[...reached].join(", ")})`);
    for (const id of ["file", "record"])
        assert.notEqual(outline[id].style, "none", `#${id} shows a focus ring`);
    await page.focus("#file");
    await page.keyboard.press("Space");
    for (let i = 0; i < 300 && choosers.length === 0; i++)
        await page.waitForTimeout(100);
    assert.equal(choosers.length, 1, "Space on the focused file input opened one file chooser");
    await choosers[0].setFiles(UPLOAD_WAV);
    assert.equal(await page.isEnabled("#submit"), true);
    await page.focus("#submit");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#segments button.seg", { timeout: 120000 });
    await page.focus("#segments button.seg");
    await page.keyboard.press("Enter");
    assert.deepEqual(errors, []);
    await context.close();
});

test("no request left localhost", () => {
    assert.deepEqual(external, []);
});
