// A small line chart on <canvas>: time on x, one or more series on y, a legend, and an empty state.
// Redrawn from scratch on every update; the data sets are small (a minute of points or a page of readings).

const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed"];

/**
 * Draws `series` ([{name, points: [{t, v}]}]) into `canvas`.
 * options: { emptyText, formatY(v), minY, xRange: [t0, t1] (default: the data's own span) }
 */
export function lineChart(canvas, series, options = {}) {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 300;
  const height = canvas.clientHeight || Number(canvas.getAttribute("height")) || 180;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const styles = getComputedStyle(canvas);
  const ink = styles.getPropertyValue("--chart-ink").trim() || "#475569";
  const grid = styles.getPropertyValue("--chart-grid").trim() || "#e2e8f0";
  ctx.font = "12px system-ui, sans-serif";

  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.v) && Number.isFinite(p.t));
  if (all.length === 0) {
    ctx.fillStyle = ink;
    ctx.textAlign = "center";
    ctx.fillText(options.emptyText ?? "No data yet", width / 2, height / 2);
    canvas.dataset.points = "0";
    return;
  }
  canvas.dataset.points = String(all.length);
  const pad = { left: 48, right: 12, top: 22, bottom: 22 };
  const t0 = options.xRange?.[0] ?? Math.min(...all.map((p) => p.t));
  const t1 = Math.max(options.xRange?.[1] ?? Math.max(...all.map((p) => p.t)), t0 + 1);
  let y0 = Math.min(options.minY ?? Number.POSITIVE_INFINITY, ...all.map((p) => p.v));
  let y1 = Math.max(...all.map((p) => p.v));
  if (y1 === y0) {
    y1 += 1;
    y0 -= y0 === 0 ? 0 : 1;
  }
  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - ((v - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const fmt = options.formatY ?? ((v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toFixed(2)).toString()));

  ctx.strokeStyle = grid;
  ctx.fillStyle = ink;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.left, y(v));
    ctx.lineTo(width - pad.right, y(v));
    ctx.stroke();
    ctx.fillText(fmt(v), pad.left - 6, y(v));
  }
  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  ctx.fillText(new Date(t0).toLocaleTimeString(), pad.left, height - 6);
  ctx.textAlign = "right";
  ctx.fillText(new Date(t1).toLocaleTimeString(), width - pad.right, height - 6);

  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const pts = s.points.filter((p) => Number.isFinite(p.v)).sort((a, b) => a.t - b.t);
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    pts.forEach((p, j) => {
      if (j === 0) ctx.moveTo(x(p.t), y(p.v));
      else ctx.lineTo(x(p.t), y(p.v));
    });
    ctx.stroke();
    if (pts.length === 1) {
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(x(pts[0].t), y(pts[0].v), 3, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.fillStyle = color;
    ctx.textAlign = "left";
    ctx.fillText(`■ ${s.name}`, pad.left + i * 110, 14);
  });
}
