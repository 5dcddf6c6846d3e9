import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signatureAlgorithmOid, tlsServerEndPoint } from "./channel-binding.js";

// Certificates made with openssl; the expected values are `openssl x509 -outform der | openssl dgst -<hash>`.
const CERTS = {
  ec256: `-----BEGIN CERTIFICATE-----
MIIBbDCCAROgAwIBAgIUQ0mUtFuJSoxApK6S8APaggXMk2EwCgYIKoZIzj0EAwIw
DDEKMAgGA1UEAwwBYTAeFw0yNjEyMDQxNjAxNTlaFw0zNjEyMDExNjAxNTlaMAwx
CjAIBgNVBAMMAWEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAR070lR9fk6WxDS
b0/PXCEBFjMRzk+qk4KsKyarKS4cVf/Yh/psAMinkww9Qdvy2HffRCAP8dDVB55y
tuMyUNr6o1MwUTAdBgNVHQ4EFgQUwELxsTTm/RFTUfKNZa0XHU2fZ+QwHwYDVR0j
BBgwFoAUwELxsTTm/RFTUfKNZa0XHU2fZ+QwDwYDVR0TAQH/BAUwAwEB/zAKBggq
hkjOPQQDAgNHADBEAiA+jFcpJXGMdSnPtPxHsQKvpi4INZsrtqLd3wvHQlyAQAIg
C9A6bUdAnTObC24CtU2suY9E2AY6YOcyo939awd9v7k=
-----END CERTIFICATE-----`,
  ec384: `-----BEGIN CERTIFICATE-----
MIIBqzCCATCgAwIBAgIUOeZ/6RcySJCY9a+KZFaUeb4qjxwwCgYIKoZIzj0EAwMw
DDEKMAgGA1UEAwwBYjAeFw0yNjEyMDQxNjAxNTlaFw0zNjEyMDExNjAxNTlaMAwx
CjAIBgNVBAMMAWIwdjAQBgcqhkjOPQIBBgUrgQQAIgNiAAT674VsMUMGmdOlhi4w
MHDGU6nhVHlZuLVwAK4HWB0kAjHBWwfl8tZmGAU5ZNohf0tL74rGe3XbrpuHs+PR
5b6i3NF0eFANtldRrRgZc2iZcxggbvC7E8NXZs5qhRJoBNyjUzBRMB0GA1UdDgQW
BBTx055/ykhKCzzaVB7L52QMtCXU3jAfBgNVHSMEGDAWgBTx055/ykhKCzzaVB7L
52QMtCXU3jAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMDA2kAMGYCMQCpJL/j
p59LQyla+aO8eCECtAUuulzW7eA5KbjUVJFfH0GFpn5Er8U3hWtPtjE7mjUCMQCs
cw7/nhzGFRFb0Sz66c1dIFx4DJqHVWuTw4UETgJnQD26XlfiiusOMwmgkfGmc7c=
-----END CERTIFICATE-----`,
  rsa1: `-----BEGIN CERTIFICATE-----
MIIB9DCCAV2gAwIBAgIUbtyx/cwF6Aw6u6XVIMJktxCmGHQwDQYJKoZIhvcNAQEF
BQAwDDEKMAgGA1UEAwwBYzAeFw0yNjEyMDQxNjAxNTlaFw0zNjEyMDExNjAxNTla
MAwxCjAIBgNVBAMMAWMwgZ8wDQYJKoZIhvcNAQEBBQADgY0AMIGJAoGBALZbQfRk
UUpIZjL/9/nvG36D6TDJkrJxLKNLF/wf+e0m/wY/jaADHcnXcjzVq5xlBfLBqhw7
LnCfD4q8KeMhTRKRTDRODsgEIbdiLN7p70xKffHiUfESI/IUsUD8BMn1QHz7haBx
BXiLyqiZVZ/U3oxp01wsvy5Kvccz0L8i67k9AgMBAAGjUzBRMB0GA1UdDgQWBBRn
CA63holhoXXtSvVB8oBtierp8jAfBgNVHSMEGDAWgBRnCA63holhoXXtSvVB8oBt
ierp8jAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBBQUAA4GBAF+8MgPTYzW0
ityKIHgcF6w+6PIHA8mddYXfwhaml6m8+vsBCtAuZaOy7uYO8N920nceRFcyCui2
XohqR/O0I8psOP703Su7HKOESGnABDdakvqvDPYRGbs8zvVNj+i3KVRJUg1OUpPr
e5MnPoPHI6T5pKNFm9Z235VpJpsuWgQV
-----END CERTIFICATE-----`,
  ed: `-----BEGIN CERTIFICATE-----
MIIBLDCB36ADAgECAhRVKL7zP1DP6m77sHO3jMUbG6VXgjAFBgMrZXAwDDEKMAgG
A1UEAwwBZDAeFw0yNjEyMDQxNjAxNTlaFw0zNjEyMDExNjAxNTlaMAwxCjAIBgNV
BAMMAWQwKjAFBgMrZXADIQATCpK/3xdoYTrPJHhuCay0e0nYEvxPQD4BEaal4KBR
qaNTMFEwHQYDVR0OBBYEFBV81ikKHfjUSrtKg9x7THAfx+RCMB8GA1UdIwQYMBaA
FBV81ikKHfjUSrtKg9x7THAfx+RCMA8GA1UdEwEB/wQFMAMBAf8wBQYDK2VwA0EA
gRbiWPFRvopdSQhfB6KZEL4ipXv/SFJjQToJiLyabDHCK5rztkIhLJ6BnqdngVJL
BnSCajXXD77GyI+p3Z3wCw==
-----END CERTIFICATE-----`,
};

const der = (pem: string) => new Uint8Array(new X509Certificate(pem).raw);
const hex = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Buffer.from(bytes).toString("hex"));

describe("tls-server-end-point (RFC 5929 §4.1)", () => {
  it("hashes with the certificate's signature hash", () => {
    expect(signatureAlgorithmOid(der(CERTS.ec256))).toBe("1.2.840.10045.4.3.2");
    expect(hex(tlsServerEndPoint(der(CERTS.ec256)))).toBe("4357fa7f16019b6f6e257000bc08bd9db31640a8dc9f637ba9bd64caaa85fa1f");
    expect(signatureAlgorithmOid(der(CERTS.ec384))).toBe("1.2.840.10045.4.3.3");
    expect(hex(tlsServerEndPoint(der(CERTS.ec384)))).toBe("5ae60137124abed3f720e9abd4fdf98c9db3de1393d63560adfcbee9fb8d112a47e22ec874cc22486897847eb979f8c6");
  });

  it("uses SHA-256 for a SHA-1 signed certificate", () => {
    expect(signatureAlgorithmOid(der(CERTS.rsa1))).toBe("1.2.840.113549.1.1.5");
    expect(hex(tlsServerEndPoint(der(CERTS.rsa1)))).toBe("1881dec585f17501ca9e6a4c548de467c36464a91a71b9d546b5432bfa4725e5");
  });

  it("has no binding for a signature without a single hash (Ed25519), nor for bytes that are not a certificate", () => {
    expect(signatureAlgorithmOid(der(CERTS.ed))).toBe("1.3.101.112");
    expect(tlsServerEndPoint(der(CERTS.ed))).toBeUndefined();
    const ec = der(CERTS.ec256);
    for (let cut = 0; cut < ec.byteLength; cut += 7) expect(() => tlsServerEndPoint(ec.subarray(0, cut))).not.toThrow();
    expect(tlsServerEndPoint(new Uint8Array([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]))).toBeUndefined();
  });
});
