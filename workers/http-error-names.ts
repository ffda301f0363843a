/**
 * The `error` field of a refusal's JSON body, by status, for the codec server and the webhook receiver:
 * a fixed word per status (never the framework's message, which can quote the request).
 */
export const HTTP_ERROR_NAMES: Readonly<Record<number, string>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable',
  503: 'unavailable',
};
