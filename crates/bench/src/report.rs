//! Measurements and their presentation: HDR latency histograms, progress bars on stderr, and
//! the summary on stdout (readable text, or JSON with `--json`).

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::time::Duration;

/// Highest latency recorded exactly: an hour, in microseconds; longer ones count as an hour.
const HIGHEST_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds (3 significant digits).
#[derive(Clone)]
pub(crate) struct Latency(Histogram<u64>);

impl Latency {
    pub(crate) fn new() -> Self {
        // Fixed, valid bounds: construction cannot fail.
        Self(Histogram::new_with_bounds(1, HIGHEST_US, 3).unwrap_or_else(|_| unreachable!()))
    }

    pub(crate) fn record(&mut self, elapsed: Duration) {
        self.record_us(elapsed.as_micros() as u64);
    }

    pub(crate) fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.clamp(1, HIGHEST_US));
    }

    pub(crate) fn add(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub(crate) fn summary(&self) -> LatencySummary {
        let h = &self.0;
        let empty = h.is_empty();
        let at = |q: f64| if empty { 0 } else { h.value_at_quantile(q) };
        LatencySummary {
            count: h.len(),
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: if empty { 0 } else { h.max() },
            mean_us: if empty { 0 } else { h.mean().round() as u64 },
        }
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

/// Percentiles of one latency, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct LatencySummary {
    pub(crate) count: u64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) p999_us: u64,
    pub(crate) max_us: u64,
    pub(crate) mean_us: u64,
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.count == 0 {
            return write!(f, "no samples");
        }
        write!(
            f,
            "p50 {}  p99 {}  p99.9 {}  max {}  (n={})",
            us(self.p50_us),
            us(self.p99_us),
            us(self.p999_us),
            us(self.max_us),
            self.count
        )
    }
}

/// Microseconds, readable.
pub(crate) fn us(value: u64) -> String {
    match value {
        0..1_000 => format!("{value} µs"),
        1_000..1_000_000 => format!("{:.2} ms", value as f64 / 1e3),
        _ => format!("{:.2} s", value as f64 / 1e6),
    }
}

/// KiB, readable.
pub(crate) fn kib(value: u64) -> String {
    if value < 10 * 1024 {
        format!("{value} KiB")
    } else {
        format!("{:.1} MiB", value as f64 / 1024.0)
    }
}

/// Bytes per item from a KiB difference, readable.
pub(crate) fn per_item(kib_delta: i64, items: u64) -> String {
    if items == 0 {
        return "n/a".to_owned();
    }
    let bytes = kib_delta as f64 * 1024.0 / items as f64;
    if bytes.abs() < 10_000.0 {
        format!("{bytes:.0} B")
    } else {
        format!("{:.1} KiB", bytes / 1024.0)
    }
}

/// A progress bar on stderr, or a hidden one with `--quiet` or when stderr is not a terminal.
pub(crate) fn progress(quiet: bool, len: u64, what: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_prefix(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A progress bar for a timed run (`len` in milliseconds): shows the elapsed time only.
pub(crate) fn progress_timed(quiet: bool, length: Duration, what: &str) -> ProgressBar {
    let bar = progress(quiet, length.as_millis() as u64, what);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {wide_bar} {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Prints the summary: `text` for people, or `report` as JSON.
pub(crate) fn emit<R: Serialize>(json: bool, report: &R, text: &str) -> Result<()> {
    if json {
        let line = serde_json::to_string_pretty(report).context("cannot encode the report")?;
        println!("{line}");
    } else {
        print!("{text}");
    }
    Ok(())
}

/// Error code → how often, for refusals seen during a run.
pub(crate) type Errors = std::collections::BTreeMap<u32, u64>;

pub(crate) fn merge_errors(into: &mut Errors, from: &Errors) {
    for (code, count) in from {
        *into.entry(*code).or_default() += count;
    }
}

pub(crate) fn errors_text(errors: &Errors) -> String {
    if errors.is_empty() {
        return "none".to_owned();
    }
    errors
        .iter()
        .map(|(code, count)| format!("{count}× code {code}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_summary() {
        let mut latency = Latency::new();
        assert_eq!(latency.summary().count, 0);
        for value in 1..=1000 {
            latency.record_us(value);
        }
        let summary = latency.summary();
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.p50_us, 500);
        assert_eq!(summary.max_us, 1000);
        let mut sum = Latency::new();
        sum.add(&latency);
        sum.add(&latency);
        assert_eq!(sum.summary().count, 2000);
    }

    #[test]
    fn readable_units() {
        assert_eq!(us(999), "999 µs");
        assert_eq!(us(1_500), "1.50 ms");
        assert_eq!(us(2_000_000), "2.00 s");
        assert_eq!(kib(512), "512 KiB");
        assert_eq!(kib(20 * 1024), "20.0 MiB");
        assert_eq!(per_item(10, 1024), "10 B");
        assert_eq!(per_item(0, 0), "n/a");
    }
}
