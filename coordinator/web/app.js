/*
 * app.js - what every dashboard page shares: the read-only API (GET /api/... on this same
 * server, JSON), units, the navigation bar, and small DOM helpers. No framework: each page's
 * script builds its own tables from the API's JSON, as memschedctl --json returns it.
 */
"use strict";

const memsched = (() => {
    const KIB_PER_MIB = 1024;

    /* GET /api/PATH?params as JSON; a non-2xx answer throws with the server's text. */
    async function api(path, params) {
        const query = new URLSearchParams();
        for (const [k, v] of Object.entries(params || {})) {
            if (v !== undefined && v !== null && v !== "") query.set(k, v);
        }
        const url = "/api/" + path + (query.toString() ? "?" + query : "");
        const res = await fetch(url, { headers: { Accept: "application/json" } });
        if (!res.ok) {
            const text = (await res.text()).trim();
            const err = new Error(text || res.status + " " + res.statusText);
            err.status = res.status;
            throw err;
        }
        return res.json();
    }

    function mib(kib) {
        if (kib === null || kib === undefined) return "–";
        return Math.round(kib / KIB_PER_MIB).toLocaleString("en-US");
    }

    function gib(kib) {
        if (kib === null || kib === undefined) return "–";
        return (kib / KIB_PER_MIB / KIB_PER_MIB).toFixed(1);
    }

    function age(ms) {
        if (ms === null || ms === undefined) return "–";
        if (ms < 1000) return ms + " ms";
        if (ms < 120000) return (ms / 1000).toFixed(1) + " s";
        if (ms < 7200000) return Math.round(ms / 60000) + " min";
        return Math.round(ms / 3600000) + " h";
    }

    /* An element with attributes and children (strings become text, never HTML). */
    function el(tag, attrs, ...children) {
        const e = document.createElement(tag);
        for (const [k, v] of Object.entries(attrs || {})) {
            if (v === undefined || v === null || v === false) continue;
            if (k === "class") e.className = v;
            else e.setAttribute(k, v);
        }
        for (const c of children.flat()) {
            if (c === null || c === undefined) continue;
            e.append(c instanceof Node ? c : document.createTextNode(String(c)));
        }
        return e;
    }

    function link(href, text) {
        return el("a", { href }, text);
    }

    function hostHref(host) {
        return "host.html?host=" + encodeURIComponent(host);
    }

    function vmHref(host, vm) {
        return "vm.html?host=" + encodeURIComponent(host) + "&vm=" + encodeURIComponent(vm);
    }

    /* A table: columns [{title, num, cell(row) -> text or Node}], one row per item. */
    function table(columns, rows, attrs) {
        const head = el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : null }, c.title)));
        const body = rows.map((r) =>
            el("tr", {}, columns.map((c) => el("td", { class: c.num ? "num" : null }, c.cell(r)))));
        return el("table", attrs, el("thead", {}, head), el("tbody", {}, body));
    }

    function liveness(state) {
        return el("span", { class: state }, state);
    }

    function card(label, value, sub, attrs) {
        return el("div", Object.assign({ class: "card" }, attrs || {}),
            el("div", { class: "label" }, label),
            el("div", { class: "value" }, value),
            sub ? el("div", { class: "sub" }, sub) : null);
    }

    function showError(where, err) {
        where.replaceChildren(el("div", { class: "error" }, err.message || String(err)));
    }

    const pages = [
        ["index.html", "Overview"],
        ["hosts.html", "Hosts"],
        ["policy.html", "Policy"],
    ];

    function nav() {
        const here = location.pathname.split("/").pop() || "index.html";
        const header = el("header", {},
            el("span", { class: "brand" }, "memsched"),
            el("nav", {}, pages.map(([href, title]) =>
                el("a", { href, class: href === here ? "here" : null }, title))));
        document.body.prepend(header);
    }

    function param(name) {
        return new URLSearchParams(location.search).get(name);
    }

    /* Run load() now and every period_ms while the page is visible; a failure shows in where. */
    function refresh(load, where, period_ms) {
        let timer = null;
        let shown = false;
        async function tick() {
            try {
                await load();
                if (!shown) {
                    /* Time to the first data on screen, for the browser test and DevTools. */
                    performance.mark("memsched-data");
                    shown = true;
                }
            } catch (err) {
                showError(where, err);
            }
            timer = setTimeout(tick, period_ms);
        }
        document.addEventListener("visibilitychange", () => {
            if (document.hidden) {
                clearTimeout(timer);
            } else {
                clearTimeout(timer);
                tick();
            }
        });
        return tick();
    }

    document.addEventListener("DOMContentLoaded", nav);
    return { api, mib, gib, age, el, link, hostHref, vmHref, table, liveness, card, showError,
             param, refresh };
})();
