//! Half wirings that must not compile (checked with trybuild): each case in `tests/wiring/`
//! is a mistake that used to build cleanly and fail silently at run time.

#[test]
fn half_wirings_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/wiring/*.rs");
}
