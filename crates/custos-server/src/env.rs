//! The environment: the one place that reads process variables. Only
//! `CUSTOS_*` variables are read, and only here.

/// Every `CUSTOS_*` variable, as (name, value); values that are not UTF-8
/// are reported as such rather than silently skipped.
#[allow(clippy::disallowed_methods)] // reason: this is the environment wrapper the ban points to
pub fn custos_vars() -> Vec<(String, Result<String, String>)> {
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with("CUSTOS_").then(|| {
                let v = v.into_string().map_err(|_| format!("{k} is not valid UTF-8"));
                (k, v)
            })
        })
        .collect()
}
