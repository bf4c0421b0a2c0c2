/*
 * host.js - one host: its memory over time (history: total, available, what the balloons
 * hold) and each VM's (balloon, used, unused) with memsched's decisions marked, then its VMs
 * with links to their "why". Refreshes every 10 s.
 */
"use strict";

(() => {
    const m = memsched;
    const COLORS = { balloon: "#2360a5", used: "#c47f00", unused: "#2e8540",
                     total: "#5d6778", available: "#2e8540", balloons: "#2360a5" };

    function used(actual, unused) {
        return actual.map((a, i) => (a === null || unused[i] === null || unused[i] === undefined
            ? null : a - unused[i]));
    }

    function hostChart(where, h, decisions) {
        where.replaceChildren();
        memschedChart.draw(where, "host", h.t, [
            { label: "total", color: COLORS.total, values: h.total_kib },
            { label: "available", color: COLORS.available, values: h.available_kib },
            { label: "balloons", color: COLORS.balloons, values: h.balloons_kib },
        ], decisions, 1100, true);
    }

    function vmCharts(where, host, vms, decisions) {
        where.replaceChildren();
        if (!vms.length) {
            where.append(m.el("p", { class: "muted" }, "no VM history yet"));
            return;
        }
        for (const vm of vms) {
            const mine = decisions.filter((d) => d.uuid === vm.uuid);
            memschedChart.draw(where, vm.domain, vm.t, [
                { label: "balloon", color: COLORS.balloon, values: vm.actual_kib },
                { label: "used", color: COLORS.used, values: used(vm.actual_kib, vm.unused_kib) },
                { label: "unused", color: COLORS.unused, values: vm.unused_kib },
            ], mine);
            const box = where.lastElementChild;
            box.id = "chart-" + vm.uuid;
            box.querySelector("h3").replaceChildren(m.link(m.vmHref(host, vm.uuid), vm.domain));
        }
    }

    function cards(h) {
        const last = h.t.length - 1;
        if (last < 0) return [];
        return [
            m.card("Host memory", m.mib(h.total_kib[last]) + " MiB", ""),
            m.card("Available", m.mib(h.available_kib[last]) + " MiB", ""),
            m.card("Balloons", m.mib(h.balloons_kib[last]) + " MiB", "what the VMs hold"),
        ];
    }

    function vmsTable(host, vms) {
        return m.table([
            { title: "VM", cell: (v) => m.link(m.vmHref(host, v.uuid), v.name) },
            { title: "state", cell: (v) => v.state + (v.stuck ? " (stuck)" : "") },
            { title: "balloon MiB", num: true, cell: (v) => m.mib(v.actual_kib) },
            { title: "target MiB", num: true, cell: (v) => m.mib(v.target_kib) },
            { title: "unused MiB", num: true, cell: (v) => m.mib(v.unused_kib) },
            { title: "usable MiB", num: true, cell: (v) => m.mib(v.usable_kib) },
            { title: "max MiB", num: true, cell: (v) => m.mib(v.max_kib) },
            { title: "last decision", cell: (v) => v.last_decision || "–" },
        ], vms, { id: "vms-table" });
    }

    async function load() {
        const host = m.param("host");
        if (!host) throw new Error("this page wants ?host=HOST");
        document.getElementById("title").textContent = host;
        const [hist, vms] = await Promise.all([m.api("history", { host }), m.api("vms", { host })]);
        document.getElementById("cards").replaceChildren(...cards(hist.host));
        hostChart(document.getElementById("host-chart"), hist.host, hist.decisions);
        vmCharts(document.getElementById("vm-charts"), host, hist.vms, hist.decisions);
        document.getElementById("vms").replaceChildren(vmsTable(host, vms.vms));
        document.getElementById("error").replaceChildren();
    }

    document.addEventListener("DOMContentLoaded", () =>
        m.refresh(load, document.getElementById("error"), 10000));
})();
