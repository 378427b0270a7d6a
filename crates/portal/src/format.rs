//! How pages show numbers and times: template filters (`ago`, `when`, `age`,
//! `bytes`, `cpus`, `money`, `duration`) and the functions behind them.

use minijinja::Environment;
use model::{now_millis, Millis};

pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("ago", |ms: Option<i64>| ago(ms, now_millis()));
    env.add_filter("when", |ms: Option<i64>| {
        ms.map(when).unwrap_or_else(|| "never".into())
    });
    env.add_filter("age", |ms: i64| {
        span_secs((now_millis() - ms).max(0) as u64 / 1000)
    });
    env.add_filter("bytes", bytes);
    env.add_filter("cpus", |millis: u64| cpus(millis));
    // In the page's `currency` (the server's config), when it has one.
    env.add_filter("money", |state: &minijinja::State, micros: u64| {
        let currency = state.lookup("currency");
        money_in(micros, currency.as_ref().and_then(|c| c.as_str()))
    });
    env.add_filter("duration", |secs: Option<u64>| {
        secs.map(span_secs).unwrap_or_else(|| "never".into())
    });
}

/// `3 min ago`; `never` for none.
pub(crate) fn ago(ms: Option<Millis>, now: Millis) -> String {
    match ms {
        None => "never".into(),
        Some(ms) if now - ms < 60_000 => "just now".into(),
        Some(ms) => format!("{} ago", span_secs((now - ms) as u64 / 1000)),
    }
}

/// A time in UTC to the minute: `2026-11-23 14:05 UTC`.
pub(crate) fn when(ms: Millis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A length of time in its largest sensible unit: `45 s`, `30 min`, `2 h 5 min`, `3 days`.
pub(crate) fn span_secs(s: u64) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 if (s % 3600) / 60 == 0 => format!("{} h", s / 3600),
        3600..86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        86_400..172_800 => "1 day".into(),
        _ => format!("{} days", s / 86_400),
    }
}

/// `8 GiB`, `512 MiB`, `1.5 GiB`.
pub(crate) fn bytes(n: u64) -> String {
    model::bytes(n)
}

/// CPUs from thousandths: `2`, `0.5`, `1.25`.
pub(crate) fn cpus(millis: u64) -> String {
    let s = format!("{:.3}", millis as f64 / 1000.0);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// GiB from bytes, to the thousandth, for a form's field: `8`, `0.5`.
pub(crate) fn gib(bytes: u64) -> String {
    cpus((u128::from(bytes) * 1000 / (1 << 30)) as u64)
}

/// An amount from millionths, to the cent: `0.50`.
pub(crate) fn money(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1e6)
}

/// An amount with its currency: after a code (`0.50 USD`), before a symbol
/// (`€0.50`).
pub(crate) fn money_in(micros: u64, currency: Option<&str>) -> String {
    match currency {
        Some(code) if code.chars().all(|c| c.is_ascii_alphabetic()) => {
            format!("{} {code}", money(micros))
        }
        Some(symbol) if !symbol.is_empty() => format!("{symbol}{}", money(micros)),
        _ => money(micros),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(bytes(8 << 30), "8 GiB");
        assert_eq!(bytes(1536 << 20), "1.5 GiB");
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(cpus(2000), "2");
        assert_eq!(cpus(500), "0.5");
        assert_eq!(cpus(1250), "1.25");
        assert_eq!(money(500_000), "0.50");
        assert_eq!(money_in(12_500_000, Some("EUR")), "12.50 EUR");
        assert_eq!(money_in(12_500_000, Some("€")), "€12.50");
        assert_eq!(money_in(12_500_000, None), "12.50");
        assert_eq!(gib(8 << 30), "8");
        assert_eq!(gib(1 << 60), "1073741824");
        assert_eq!(gib(512 << 20), "0.5");
        assert_eq!(span_secs(1800), "30 min");
        assert_eq!(span_secs(7500), "2 h 5 min");
        assert_eq!(span_secs(7200), "2 h");
        assert_eq!(span_secs(3 * 86_400 + 5), "3 days");
        assert_eq!(ago(None, 0), "never");
        assert_eq!(ago(Some(1_000), 30_000), "just now");
        assert_eq!(ago(Some(0), 600_000), "10 min ago");
        assert_eq!(when(1_795_435_500_000), "2026-11-23 12:05 UTC");
    }
}
