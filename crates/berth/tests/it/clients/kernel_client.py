"""A JupyterHub API client as users write them: `requests` with a hub token
and no redirects followed, `websocket-client` for a kernel's channels.

Usage: kernel_client.py BASE_URL TOKEN PREFIX
  (PREFIX is a server's URL, /user/NAME/ or /user/NAME/SERVER/)

Through PREFIX it writes a file with the contents API and reads it back,
starts a kernel, runs `6*7` over the channels WebSocket, and prints one JSON
line: {"contents": ..., "result": ...}. Any other answer fails loudly.
"""

import json
import sys
import uuid

import requests
import websocket

base, token, prefix = sys.argv[1:4]
headers = {"Authorization": f"token {token}"}


def call(method, path, **kw):
    r = requests.request(
        method, f"{base}{prefix}{path}", headers=headers, allow_redirects=False,
        timeout=60, **kw,
    )
    if r.status_code >= 300:
        sys.exit(f"{method} {prefix}{path}: {r.status_code} {r.headers.get('location', '')} {r.text[:500]}")
    return r


call("PUT", "api/contents/from-client.txt",
     json={"type": "file", "format": "text", "content": "written by a client"})
contents = call("GET", "api/contents/from-client.txt").json()["content"]

kernel = call("POST", "api/kernels", json={"name": "python3"}).json()
ws_url = base.replace("http://", "ws://", 1) + f"{prefix}api/kernels/{kernel['id']}/channels"
ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=60)
msg_id = uuid.uuid4().hex
ws.send(json.dumps({
    "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
               "username": "", "version": "5.3", "date": ""},
    "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
    "content": {"code": "6*7", "silent": False, "store_history": False,
                "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
}))
result = None
while result is None:
    m = json.loads(ws.recv())
    if m.get("msg_type") == "execute_result" and m["parent_header"].get("msg_id") == msg_id:
        result = m["content"]["data"]["text/plain"]
ws.close()
call("DELETE", f"api/kernels/{kernel['id']}")
print(json.dumps({"contents": contents, "result": result}))
