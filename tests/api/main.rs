//! Integration tests: the real server on an ephemeral port, driven through the
//! generated tonic clients. One binary, one module per concern.

mod batch_get_codes;
mod built_in_data;
mod get_code;
mod health_and_reflection;
mod helpers;
mod limits;
mod list_codes;
mod search_codes;
mod shutdown;
mod validate_codes;
