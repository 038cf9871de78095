//! The one call into llama.cpp that the safe wrapper (`llama-cpp-2`) does not
//! expose: `llama_model_quantize`. It is the only `unsafe` code in the
//! workspace; keep it this small.

use std::ffi::CStr;

/// Runs `llama_model_quantize(src, dst, params)` with llama.cpp's default
/// parameters, `ftype`, `nthread` threads (0: hardware concurrency) and
/// `allow_requantize` set. Returns llama.cpp's status (0 on success).
#[allow(unsafe_code)]
pub(super) fn model_quantize(src: &CStr, dst: &CStr, ftype: u32, nthread: i32) -> u32 {
    // SAFETY: `llama_model_quantize_default_params` takes no arguments and returns
    // a plain struct by value; its pointer fields (imatrix, kv_overrides,
    // tt_overrides, prune_layers) are null, which llama.cpp reads as "none", and we
    // leave them so. `src` and `dst` are valid NUL-terminated strings that outlive
    // the call, and `params` lives on this stack frame for its whole duration.
    // llama.cpp keeps no pointer to any of them after returning, and reports
    // failure through the return value (it catches its C++ exceptions).
    unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.ftype = ftype;
        params.nthread = nthread;
        params.allow_requantize = true;
        llama_cpp_sys_2::llama_model_quantize(src.as_ptr(), dst.as_ptr(), &params)
    }
}
