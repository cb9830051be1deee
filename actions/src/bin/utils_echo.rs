//! `utils_echo`: the catalog's `/whisk.system/utils/echo` ("Returns the input").
//!
//! Params: anything. Result: the params unchanged (`{}` when there are none), as `echo.js`
//! (`return params || {}`). Logs: none.

fn main() {
    ow_action::run(Ok::<_, String>);
}
