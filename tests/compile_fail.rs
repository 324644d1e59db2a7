//! Route sets `routes!` must refuse at compile time, each with a message
//! that names both patterns (and a request both match) or the bad part.

#[test]
fn route_conflicts_and_bad_patterns_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
}
