// Live progress for the dashboard: elements marked data-live-job follow that job's
// Server-Sent Events (GET /v1/jobs/{id}/events) and update the fields inside them. Text is set
// with textContent only; nothing a job holds becomes markup.
"use strict";

(function () {
  // Each stream holds a connection; browsers allow six per host over HTTP/1.1.
  const MAX_STREAMS = 4;

  function formatNumber(value, digits) {
    if (value === null || value === undefined) return "-";
    return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function setField(root, name, text) {
    for (const element of root.querySelectorAll(`[data-field="${name}"]`)) {
      element.textContent = text;
      if (name === "status") element.className = `status status-${text}`;
    }
  }

  function setBar(svg, value, rejected) {
    if (!svg) return;
    const valueBar = svg.querySelector('[data-bar="value"]');
    const rejectedBar = svg.querySelector('[data-bar="rejected"]');
    if (valueBar) valueBar.setAttribute("width", String(value));
    if (rejectedBar) {
      rejectedBar.setAttribute("x", String(value));
      rejectedBar.setAttribute("width", String(rejected));
    }
  }

  function showFunnel(root, funnel) {
    const scale = Math.max(1, ...funnel.map((step) => step.samples + step.rejected));
    for (const step of funnel) {
      const row = root.querySelector(`[data-funnel-step="${CSS.escape(step.step)}"]`);
      if (!row) continue;
      setField(row, "step-samples", formatNumber(step.samples, 0));
      setField(row, "step-rejected", step.rejected ? formatNumber(step.rejected, 0) : "");
      setBar(row.querySelector("svg.bar"), (100 * step.samples) / scale, (100 * step.rejected) / scale);
    }
  }

  function show(root, job) {
    setField(root, "status", job.status);
    setField(root, "progress", `${(100 * job.progress).toFixed(1)}%`);
    setField(root, "accepted", formatNumber(job.counts.accepted, 0));
    setField(root, "rejected", formatNumber(job.counts.rejected, 0));
    setField(root, "samples_per_s", formatNumber(job.samples_per_s, 1));
    setField(root, "tokens_per_s", formatNumber(job.tokens_per_s, 1));
    const progressBar = root.querySelector(".progress svg.bar");
    if (progressBar) setBar(progressBar, 100 * job.progress, 0);
    if (root.querySelector("[data-funnel-step]")) showFunnel(root, job.counts.funnel);
  }

  function follow(root) {
    const id = root.dataset.liveJob;
    const source = new EventSource(`/v1/jobs/${encodeURIComponent(id)}/events`);
    source.addEventListener("progress", (event) => show(root, JSON.parse(event.data)));
    source.addEventListener("finished", (event) => {
      source.close();
      show(root, JSON.parse(event.data));
      root.removeAttribute("data-live-job");
      // The job's page shows what only the final counts hold (rejected samples, usage).
      if (root.hasAttribute("data-reload-when-finished")) window.location.reload();
    });
  }

  for (const root of Array.from(document.querySelectorAll("[data-live-job]")).slice(0, MAX_STREAMS)) {
    follow(root);
  }
})();
