//! Integration tests: the real server on an ephemeral port, driven through the
//! generated tonic clients. One binary, one module per concern.

mod audit;
mod batch_get_codes;
mod binary;
mod built_in_data;
mod claim_check;
mod claim_edit_files;
mod cms_counting;
mod code_sets;
mod durability;
mod frame_per_message;
mod get_code;
mod health_and_reflection;
mod helpers;
mod hostile;
mod limits;
mod list_codes;
mod metrics;
mod postgres_fixture;
mod quality_fixtures;
mod quality_import;
mod quality_measures;
mod quality_performance;
mod quality_recording;
mod replicas;
mod request_log;
mod search_codes;
mod security;
mod shared_store;
mod shutdown;
mod tracing_export;
mod validate_codes;
