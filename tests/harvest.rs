//! `ride bench --harvest`: criterion's estimates become one CSV row per benchmark.

#[test]
fn criterion_results_are_harvested_into_a_csv() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let new = tmp.path().join("criterion/slstm_fwd_t2/run/new");
    std::fs::create_dir_all(&new).expect("mkdir");
    std::fs::write(
        new.join("benchmark.json"),
        r#"{"group_id":"slstm_fwd_t2","function_id":"run","value_str":null,"throughput":{"Elements":1000},"full_id":"slstm_fwd_t2/run","directory_name":"slstm_fwd_t2/run","title":"slstm_fwd_t2/run"}"#,
    )
    .expect("write");
    std::fs::write(
        new.join("estimates.json"),
        r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1900000.0,"upper_bound":2100000.0},"point_estimate":2000000.0,"standard_error":1000.0}}"#,
    )
    .expect("write");
    // a "base" copy (criterion's previous run) is not harvested
    let base = tmp.path().join("criterion/slstm_fwd_t2/run/base");
    std::fs::create_dir_all(&base).expect("mkdir");
    let out = tmp.path().join("bench/criterion.csv");
    let rows = ride::bench::criterion_harvest::harvest(&tmp.path().join("criterion"), &out)
        .expect("harvest");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].benchmark, "slstm_fwd_t2/run");
    assert_eq!(rows[0].elements, Some(1000));
    let eps = rows[0].elements_per_s.expect("throughput");
    assert!((eps - 500_000.0).abs() < 1e-6, "{eps}");
    let text = std::fs::read_to_string(&out).expect("csv");
    assert!(text.starts_with("benchmark,mean_ns,mean_ns_lo95,mean_ns_hi95,elements,elements_per_s,measured_utc,git_commit,cpu"));
    // an empty folder is a clear error
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let err = ride::bench::criterion_harvest::harvest(&empty, &out).expect_err("no results");
    assert!(
        format!("{err:#}").contains("no criterion results"),
        "{err:#}"
    );
}
