// kubectl's typed clients (auth can-i) send `application/vnd.kubernetes.protobuf`. This reads the
// one such body we need, a SelfSubjectAccessReview, from the envelope
// `"k8s\0" + runtime.Unknown{ typeMeta=1, raw=2 }` (k8s.io/apimachinery runtime/serializer/protobuf).
// The answer can be JSON: kubectl's Accept lists application/json too.

function fields(buf: Buffer): Map<number, Buffer[]> {
  const out = new Map<number, Buffer[]>();
  let at = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const b = buf[at++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
      shift += 7;
    }
  };
  while (at < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    let value: Buffer;
    if (wire === 0) value = Buffer.from([varint()]);
    else if (wire === 2) {
      const len = varint();
      value = buf.subarray(at, at + len);
      at += len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}

const str = (m: Map<number, Buffer[]>, f: number): string => m.get(f)?.[0]?.toString("utf8") ?? "";

/** SelfSubjectAccessReview → `{ spec: { resourceAttributes } }` as the JSON form would carry it. */
export function decodeSelfSubjectAccessReview(body: Buffer): { spec: { resourceAttributes: Record<string, string> } } {
  if (body.subarray(0, 4).toString("latin1") !== "k8s\0") throw new Error("not a Kubernetes protobuf envelope");
  const raw = fields(body.subarray(4)).get(2)?.[0] ?? Buffer.alloc(0);
  const spec = fields(fields(raw).get(2)?.[0] ?? Buffer.alloc(0));
  const attrs = fields(spec.get(1)?.[0] ?? Buffer.alloc(0));
  const names = ["", "namespace", "verb", "group", "version", "resource", "subresource", "name"];
  const resourceAttributes: Record<string, string> = {};
  for (let f = 1; f < names.length; f++) if (str(attrs, f) !== "") resourceAttributes[names[f]!] = str(attrs, f);
  return { spec: { resourceAttributes } };
}
