//! Generated documents checked for drift: regenerate them with
//! `UPDATE_EXPECT=1 cargo test -p server`.

use expect_test::expect_file;

#[test]
fn openapi_json_is_up_to_date() {
    expect_file!["../../../../docs/openapi.json"]
        .assert_eq(&server::openapi().to_pretty_json().unwrap());
}

#[test]
fn http_errors_md_is_up_to_date() {
    let doc = format!(
        "# HTTP errors\n\
         \n\
         <!-- Generated from `server::error::Code` by `UPDATE_EXPECT=1 cargo test -p server`; do not edit. -->\n\
         \n\
         Every error response of berth's HTTP API, whatever the route, has the same JSON body\n\
         (`content-type: application/json`):\n\
         \n\
         ```json\n\
         {{\"code\": \"not_found\", \"message\": \"workspace not found\", \"request_id\": \"0b6c3f0e9d8a4f7c9b1e2d3a4c5b6a79\"}}\n\
         ```\n\
         \n\
         - `code` is machine-readable and stable: clients branch on it, never on `message`.\n\
         \x20 Codes are added, never renamed or given another meaning; each always comes with\n\
         \x20 the HTTP status listed below, except under `/hub/api`, where bad input (the\n\
         \x20 415 and 422 codes) is a 400, as JupyterHub answers it.\n\
         - `message` says what went wrong, for people; its wording may change.\n\
         - `request_id` is also sent in the `x-request-id` header of every response, and\n\
         \x20 the server's log records it; quote it when reporting a problem.\n\
         \n\
         A 5xx body reveals no internals: its message is generic (`internal server error`,\n\
         `database unavailable`), and the cause is logged once, under the request id.\n\
         A 429 carries a `retry-after` header with the seconds to wait.\n\
         \n\
         Not covered here: the OAuth endpoints `/hub/api/oauth2/*` answer RFC 6749's\n\
         errors (`{{\"error\", \"error_description\"}}`, or an HTML page before the client\n\
         is known), and `/user/…` answers browsers with HTML pages.\n\
         \n\
         {}",
        server::error::error_table_markdown()
    );
    expect_file!["../../../../docs/http-errors.md"].assert_eq(&doc);
}
