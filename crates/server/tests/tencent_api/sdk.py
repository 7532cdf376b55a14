"""Calls one Tencent Cloud API 3.0 action through the official Python SDK, as a backend would.

    sdk.py ENDPOINT SECRET_ID SECRET_KEY SERVICE ACTION PARAMS_JSON [--get] [--skew SECONDS]
           [--each N]

SERVICE is `live` (2018-08-01) or `vod` (2018-07-17). The request is the SDK's model
(`<Action>Request().from_json_string`), sent by the SDK's client method (`client.<Action>`),
so the SDK signs it (TC3-HMAC-SHA256) and parses the answer into its response model. Prints
one JSON line: {"ok": <response model as JSON>} or {"error": {"code", "message"}}.
`--skew` shifts the SDK's clock (to test the timestamp window); `--get` sends a GET;
`--each N` makes N calls, `{i}` in PARAMS_JSON replaced by 0..N-1, and prints the first error
or else the last answer (to fill a limit without N processes).
"""
import json
import sys
import time
import warnings

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.live.v20180801 import live_client, models as live_models
from tencentcloud.vod.v20180717 import vod_client, models as vod_models

warnings.simplefilter("ignore")


def main(argv):
    endpoint, secret_id, secret_key, service, action, params = argv[:6]
    rest = argv[6:]
    method = "GET" if "--get" in rest else "POST"
    if "--skew" in rest:
        skew = int(rest[rest.index("--skew") + 1])
        real = time.time
        time.time = lambda: real() + skew
    cred = credential.Credential(secret_id, secret_key)
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint, reqMethod=method))
    if service == "live":
        client, models = live_client.LiveClient(cred, "ap-guangzhou", profile), live_models
    else:
        client, models = vod_client.VodClient(cred, "ap-guangzhou", profile), vod_models
    each = int(rest[rest.index("--each") + 1]) if "--each" in rest else 1
    for i in range(each):
        req = getattr(models, action + "Request")()
        req.from_json_string(params.replace("{i}", str(i)))
        try:
            resp = getattr(client, action)(req)
        except TencentCloudSDKException as e:
            print(json.dumps({"error": {"code": e.get_code(), "message": e.get_message(),
                                        "request_id": e.get_request_id(), "call": i}}))
            return
    print(json.dumps({"ok": json.loads(resp.to_json_string())}))

if __name__ == "__main__":
    main(sys.argv[1:])
