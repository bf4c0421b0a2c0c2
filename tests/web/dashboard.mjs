// dashboard.mjs - the browser test's pages, driven in Debian's headless chromium through
// playwright-core (run by web.sh, which starts the coordinator and the agents).
//
//   node dashboard.mjs            environment: BASE (http://127.0.0.1:PORT), WANT (a directory
//                                 with memschedctl's --json answers: hosts.json, why.json,
//                                 history.json, policy.json), HOST, VM, ARTIFACTS (screenshots),
//                                 FIXTURE (history.json for the chart's exact check),
//                                 MODE=timing (only print each page's load time; no checks),
//                                 NODE_MODULES (where playwright-core is)
//
// Each page: loads with no console error, no page error and no failed request; shows what
// memschedctl shows; a full-page screenshot in ARTIFACTS. Prints "TIMING page ms" lines: from
// navigation to the page's data on screen. Exits 1 with every failure listed.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const env = process.env;
// playwright-core lives in the build dir (npm ci there), not beside this file.
const { chromium } = createRequire(resolve(env.NODE_MODULES, "noop.js"))("playwright-core");
const base = env.BASE;
const timingOnly = env.MODE === "timing";
const failures = [];
const fail = (msg) => failures.push(msg);
const want = (name) => JSON.parse(readFileSync(join(env.WANT, name), "utf8"));

const browser = await chromium.launch({
    executablePath: env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });

// Open path, wait for selector (the page's data), screenshot it, and report what went wrong
// on the way. Returns the page (open until the next visit).
async function visit(name, path, selector, setup) {
    const page = await context.newPage();
    const errors = [];
    page.on("console", (m) => { if (m.type() === "error") errors.push("console: " + m.text()); });
    page.on("pageerror", (e) => errors.push("page error: " + e.message));
    page.on("requestfailed", (r) => errors.push("request failed: " + r.url()));
    page.on("response", (r) => { if (r.status() >= 400) errors.push(r.status() + " for " + r.url()); });
    if (setup) await setup(page);
    const started = Date.now();
    await page.goto(base + path);
    try {
        await page.waitForSelector(selector, { timeout: 10000 });
        await page.waitForFunction(() => performance.getEntriesByName("memsched-data").length > 0,
            null, { timeout: 10000 });
    } catch (e) {
        fail(`${name}: ${selector} never showed (${e.message.split("\n")[0]})`);
    }
    const ms = Date.now() - started;
    // The page's own time from navigation to its data on screen (app.js marks it).
    const dataMs = await page.evaluate(() => {
        const m = performance.getEntriesByName("memsched-data")[0];
        return m ? Math.round(m.startTime) : null;
    });
    console.log(`TIMING ${name} data_ms=${dataMs} wall_ms=${ms}`);
    // The whole page, but only the first screen when timing (1,000 rows take long to shoot).
    await page.screenshot({ path: join(env.ARTIFACTS, name + ".png"), fullPage: !timingOnly });
    for (const e of errors) fail(`${name}: ${e}`);
    return page;
}

// The rows of a table as arrays of cell texts.
const rows = (page, id) => page.$$eval(`#${id} tbody tr`,
    (trs) => trs.map((tr) => Array.from(tr.cells, (td) => td.textContent.trim())));

const mib = (kib) => Math.round(kib / 1024).toLocaleString("en-US");

async function overview() {
    const page = await visit("overview", "/", "#card-hosts");
    if (timingOnly) return page.close();
    const hosts = want("hosts.json").hosts;
    const text = await page.textContent("#card-hosts .value");
    if (text !== String(hosts.length)) fail(`overview: ${text} hosts, memschedctl ${hosts.length}`);
    await page.close();
}

async function hostTable() {
    const page = await visit("hosts", "/hosts.html", "#hosts-table tbody tr");
    if (timingOnly) return page.close();
    const got = await rows(page, "hosts-table");
    const hosts = want("hosts.json").hosts;
    // The columns that do not move between two reads: host, VMs, host memory, policy version.
    const pick = (r) => [r[0], r[3], r[4], r[7]].join(" ");
    const wantRows = hosts.map((h) => [h.host_id, String(h.vm_count), mib(h.host_total_kib),
        "v" + h.policy_version].join(" "));
    const gotRows = got.map(pick);
    if (JSON.stringify(gotRows) !== JSON.stringify(wantRows))
        fail(`hosts: the table shows\n  ${gotRows.join("\n  ")}\nmemschedctl --json hosts says\n  ${wantRows.join("\n  ")}`);
    for (const [i, h] of hosts.entries()) {
        if (got[i] && got[i][1] !== h.liveness) fail(`hosts: ${h.host_id} ${got[i][1]}, memschedctl ${h.liveness}`);
    }
    await page.close();
}

async function hostPage() {
    const path = "/host.html?host=" + encodeURIComponent(env.HOST);
    const page = await visit("host", path, '#vm-charts[data-drawn="all"]');
    if (timingOnly) return page.close();
    const history = want("history.json");
    const charts = await page.$$eval("#vm-charts .chart",
        (cs) => cs.map((c) => ({ points: Number(c.dataset.points), decisions: Number(c.dataset.decisions),
                                 canvas: !!c.querySelector("canvas") })));
    if (charts.length !== history.vms.length)
        fail(`host: ${charts.length} VM charts, history has ${history.vms.length} VMs`);
    if (!charts.some((c) => c.points > 0)) fail("host: no VM chart has a data point");
    if (!charts.every((c) => c.canvas)) fail("host: a chart without its canvas (uPlot did not draw)");
    const marked = charts.reduce((n, c) => n + c.decisions, 0);
    if (history.decisions.length && !marked) fail("host: history has decisions, no chart marks one");
    const hostPoints = await page.getAttribute("#host-chart .chart", "data-points");
    if (!(Number(hostPoints) > 0)) fail(`host: the host chart has ${hostPoints} points`);
    const vms = await rows(page, "vms-table");
    if (!vms.length) fail("host: no VM rows");
    console.log(`host: ${charts.length} VM charts, ${charts.reduce((n, c) => n + c.points, 0)} points, ${marked} decisions marked`);
    await page.close();
}

// The chart code on a known history: every non-null sample is a point, every decision marked.
async function fixtureChart() {
    const fixture = readFileSync(env.FIXTURE, "utf8");
    const path = "/host.html?host=" + encodeURIComponent(env.HOST);
    const page = await visit("host-fixture", path, '#vm-charts[data-drawn="all"]', (p) =>
        p.route("**/api/history?*", (route) =>
            route.fulfill({ status: 200, contentType: "application/json", body: fixture })));
    const got = await page.$$eval("#vm-charts .chart",
        (cs) => cs.map((c) => [Number(c.dataset.points), Number(c.dataset.decisions)]));
    // hog: 4 balloon + 3 used + 3 unused (one unknown), 2 decisions; idle: 2 + 2 + 2, none.
    const wantCharts = [[10, 2], [6, 0]];
    if (JSON.stringify(got) !== JSON.stringify(wantCharts))
        fail(`fixture chart: points and decisions ${JSON.stringify(got)}, want ${JSON.stringify(wantCharts)}`);
    const hostPoints = await page.getAttribute("#host-chart .chart", "data-points");
    if (hostPoints !== "12") fail(`fixture chart: host chart has ${hostPoints} points, want 12`);
    await page.close();
}

async function vmPage() {
    const path = "/vm.html?host=" + encodeURIComponent(env.HOST) + "&vm=" + encodeURIComponent(env.VM);
    const page = await visit("vm", path, "#why-table tbody tr, #why-none");
    if (timingOnly) return page.close();
    const why = want("why.json");
    // The agent of HOST is stopped (web.sh), so its decisions are what memschedctl read.
    const got = (await rows(page, "why-table")).map((r) => [r[1], r[2], r[3]].join(" "));
    const wantRows = why.decisions.map((d) => [d.reason,
        mib(d.old_target_kib) + " → " + mib(d.new_target_kib), d.counterpart].join(" "));
    if (!wantRows.length) fail("vm: memschedctl why shows no decision for " + env.VM);
    if (JSON.stringify(got) !== JSON.stringify(wantRows))
        fail(`vm: the why table shows\n  ${got.join("\n  ")}\nmemschedctl why says\n  ${wantRows.join("\n  ")}`);
    const title = await page.textContent("#title");
    if (!title.includes(why.vm.name)) fail(`vm: title '${title}' does not name ${why.vm.name}`);
    await page.close();
}

async function policyPage() {
    const page = await visit("policy", "/policy.html", "#policy-hosts-table tbody tr");
    if (timingOnly) return page.close();
    const policy = want("policy.json");
    const got = await rows(page, "policy-hosts-table");
    for (const h of policy.hosts) {
        const row = got.find((r) => r[0] === h.host_id);
        if (!row) { fail(`policy: no row for ${h.host_id}`); continue; }
        const ack = h.last_ack ? "v" + h.last_ack.version + " " + (h.last_ack.applied ? "applied" : "refused: " + h.last_ack.reason) : "–";
        if (row[5] !== ack) fail(`policy: ${h.host_id} ack '${row[5]}', memschedctl '${ack}'`);
    }
    const policies = await rows(page, "policies-table");
    if (policies.length !== policy.policies.length)
        fail(`policy: ${policies.length} scopes shown, memschedctl ${policy.policies.length}`);
    await page.close();
}

try {
    await overview();
    await hostTable();
    await hostPage();
    if (!timingOnly) await fixtureChart();
    await vmPage();
    await policyPage();
} catch (e) {
    fail("unexpected: " + (e.stack || e));
} finally {
    await browser.close();
}
if (failures.length) {
    console.error("FAIL:\n  " + failures.join("\n  "));
    process.exit(1);
}
console.log("PASS: every page loaded with no console error and showed what memschedctl shows");
