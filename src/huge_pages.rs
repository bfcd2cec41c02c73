//! Keep the process out of transparent huge pages.
//!
//! mimalloc (v3) asks the kernel for transparent huge pages on its arenas (`MADV_HUGEPAGE`), so
//! every touched 2 MiB stretch counts whole in the resident set. A node is mostly small
//! per-connection objects: a node holding 10,000 idle connections had 60 of its 101 MiB
//! resident in huge pages, and with them off it holds the same in 76 MB instead of 106, with no
//! CPU difference beyond the spread at 50,000 deliveries/s (docs/BENCHMARKS.md, hold and fanout).
//! An operator who wants them anyway sets `MIMALLOC_ALLOW_THP=1`, mimalloc's own switch.

/// Whether to turn huge pages off, given mimalloc's `MIMALLOC_ALLOW_THP` setting: off unless the
/// operator enabled them explicitly (mimalloc's own default is on).
pub fn turn_off(allow_thp: Option<&str>) -> bool {
    match allow_thp.map(str::trim) {
        None | Some("") => true,
        Some(value) => matches!(
            value.to_ascii_lowercase().as_str(),
            "0" | "false" | "off" | "no"
        ),
    }
}

/// Applies [`turn_off`] to this process (`PR_SET_THP_DISABLE`, which also covers memory the
/// allocator has already asked huge pages for). Returns why it could not, for the log.
pub fn apply() -> Result<(), String> {
    let setting = std::env::var("MIMALLOC_ALLOW_THP").ok();
    if !turn_off(setting.as_deref()) {
        return Ok(());
    }
    disable()
}

#[cfg(target_os = "linux")]
fn disable() -> Result<(), String> {
    rustix::thread::disable_transparent_huge_pages(true)
        .map_err(|err| format!("cannot turn transparent huge pages off: {err}"))
}

#[cfg(not(target_os = "linux"))]
fn disable() -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::turn_off;

    #[test]
    fn huge_pages_stay_off_unless_the_operator_enables_them() {
        assert!(turn_off(None));
        assert!(turn_off(Some("")));
        assert!(turn_off(Some("0")));
        assert!(turn_off(Some("off")));
        assert!(turn_off(Some("FALSE")));
        assert!(!turn_off(Some("1")));
        assert!(!turn_off(Some("on")));
        assert!(!turn_off(Some("true")));
    }
}
