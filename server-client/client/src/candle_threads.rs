//! candle's thread count, settled once per component (feature `candle`).
//!
//! candle 0.11 asks for its thread count on every matrix product. Unless `RAYON_NUM_THREADS`
//! is set, the answer comes from reading and parsing `/proc/cpuinfo`, each time: in an infer
//! instance of `notebooks/classifier.ipynb` that was about a fifth of its CPU per request
//! (perf: `show_cpuinfo`, `vsnprintf`, `seq_printf`), and a training loop pays it per batch.
//! A component works the count out once, the way candle would, and sets the variable
//! candle reads first. It also sizes rayon's global pool, which candle uses for that work.

/// The variable both candle and rayon read for their thread count.
pub const THREADS_ENV: &str = "RAYON_NUM_THREADS";

/// The value to set, if any: `None` when the user set a usable count already.
fn to_set(current: Option<&str>, candle_default: impl FnOnce() -> usize) -> Option<String> {
    match current.map(str::trim).and_then(|v| v.parse::<usize>().ok()) {
        Some(n) if n > 0 => None,
        _ => Some(candle_default().max(1).to_string()),
    }
}

/// Sets [`THREADS_ENV`] to candle's own choice when it is not set to a count already.
///
/// # Safety
/// Changes the environment: call it before the process starts any other thread.
pub(crate) unsafe fn settle() {
    let current = std::env::var(THREADS_ENV).ok();
    if let Some(value) = to_set(current.as_deref(), candle_core::utils::get_num_threads) {
        // SAFETY: the caller's contract (no other thread yet).
        unsafe { std::env::set_var(THREADS_ENV, value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_count_is_kept_and_anything_else_replaced() {
        let cases = [(None, Some("6")), (Some("4"), None), (Some(" 2 "), None), (Some("0"), Some("6")), (Some(""), Some("6")), (Some("many"), Some("6"))];
        for (current, expected) in cases {
            assert_eq!(to_set(current, || 6).as_deref(), expected, "{current:?}");
        }
        assert_eq!(to_set(None, || 0).as_deref(), Some("1"), "never zero");
    }
}
