/*
 * vm.js - one VM and its "why" (the why command): its balloon, unused and usable memory, and
 * each recent decision with its reason, counterpart, the signal and the need that caused it,
 * and the policy version it was made under; then the thresholds in force on its host.
 */
"use strict";

(() => {
    const m = memsched;

    function cards(vm) {
        return [
            m.card("Balloon", m.mib(vm.actual_kib) + " MiB", "target " + m.mib(vm.target_kib) + " MiB"),
            m.card("Unused", m.mib(vm.unused_kib) + " MiB", "usable " + m.mib(vm.usable_kib) + " MiB"),
            m.card("Max", m.mib(vm.max_kib) + " MiB",
                vm.cap_kib ? "cap " + m.mib(vm.cap_kib) + " MiB" : "no per-VM cap"),
            m.card("State", vm.state, (vm.managed ? "managed" : "unmanaged") +
                (vm.stuck ? " · stuck" : "") + (vm.stale ? " · stale stats" : "")),
            m.card("Host", m.link(m.hostHref(vm.host_id), vm.host_id), m.liveness(vm.host_liveness)),
        ];
    }

    function whyTable(decisions) {
        if (!decisions.length)
            return m.el("p", { class: "muted", id: "why-none" }, "no recent decision for this VM");
        return m.table([
            { title: "age", cell: (d) => m.age(d.age_ms) },
            { title: "reason", cell: (d) => d.reason },
            { title: "target MiB", cell: (d) => m.mib(d.old_target_kib) + " → " + m.mib(d.new_target_kib) },
            { title: "counterpart", cell: (d) => d.counterpart },
            { title: "signal MiB", num: true, cell: (d) => d.signal_mib },
            { title: "need MiB", num: true, cell: (d) => d.need_mib },
            { title: "lookahead MiB", num: true, cell: (d) => d.lookahead_mib },
            { title: "VMs MiB", num: true, cell: (d) => d.from_or_to_vms_mib },
            { title: "host MiB", num: true, cell: (d) => d.from_or_to_host_mib },
            { title: "policy", cell: (d) => "v" + d.policy_version },
        ], decisions, { id: "why-table" });
    }

    /* Thresholds in MiB, as the config and memschedctl policy set take them. */
    function policyTable(p) {
        const rows = Object.entries(p).map(([k, v]) => (k.endsWith("_kib") && typeof v === "number"
            ? [k.slice(0, -4) + "_mib", v / 1024] : [k, v]));
        return m.table([
            { title: "key", cell: (kv) => kv[0] },
            { title: "value", num: true, cell: (kv) => String(kv[1]) },
        ], rows, { id: "policy-table" });
    }

    async function load() {
        const host = m.param("host"), vm = m.param("vm");
        if (!host || !vm) throw new Error("this page wants ?host=HOST&vm=VM");
        const r = await m.api("why", { host, vm });
        document.getElementById("title").textContent = r.vm.name + " on " + host;
        document.getElementById("cards").replaceChildren(...cards(r.vm));
        document.getElementById("why").replaceChildren(whyTable(r.decisions));
        document.getElementById("policy").replaceChildren(
            m.el("p", {}, "policy v" + r.policy_version),
            r.policy_in_force ? policyTable(r.policy_in_force)
                : m.el("p", { class: "muted" }, "its agent has not reported the thresholds it plans with"));
        document.getElementById("error").replaceChildren();
    }

    document.addEventListener("DOMContentLoaded", () =>
        m.refresh(load, document.getElementById("error"), 5000));
})();
