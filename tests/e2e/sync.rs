//! conftool-sync end to end.

use crate::util::*;

#[test]
fn syncing_example_conf_twice_writes_once() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    let after_first = (ctx.dump(), ctx.revision());
    assert!(after_first
        .0
        .contains_key("/v1/pools/eqiad/appservers/apache/mw1018"));
    ctx.sync(&conf, &[]).expect_code(0);
    assert_eq!((ctx.dump(), ctx.revision()), after_first);
}
