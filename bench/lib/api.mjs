/** A small JSON client for setting the bench up through the real HTTP API. */

export class Api {
  constructor(baseUrl, key) {
    this.baseUrl = baseUrl;
    this.key = key;
  }

  withKey(key) {
    return new Api(this.baseUrl, key);
  }

  async call(method, path, body, headers = {}) {
    const response = await fetch(this.baseUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${this.key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await response.text();
    const json = text && /json/.test(response.headers.get('content-type') ?? '') ? JSON.parse(text) : text;
    return { status: response.status, body: json };
  }

  /** Like call, but any status other than `expected` is an error naming the request. */
  async must(expected, method, path, body, headers) {
    const res = await this.call(method, path, body, headers);
    if (res.status !== expected) {
      throw new Error(
        `${method} ${path}: expected ${expected}, got ${res.status} ${JSON.stringify(res.body)}`,
      );
    }
    return res.body;
  }
}
