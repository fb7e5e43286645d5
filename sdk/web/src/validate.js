// Local checks of call options, done before anything is sent: a bad option rejects the call
// with 9003 (missing, mistyped or out of range) or 9007 (too large) and a message naming the
// field. The server checks everything again; these only give a quick, clear answer.

import { BeckonError } from './errors.js';
import { ERROR_CODE, LIMITS } from './constants.js';

const encoder = new TextEncoder();

/** @param {string} text */
export function utf8Length(text) {
  return encoder.encode(text).length;
}

// Rust's `char::is_control`: the Unicode Cc category.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** @param {string} message */
export function invalid(message) {
  return new BeckonError(ERROR_CODE.INVALID_PARAMETER, message);
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
export function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The options object of a call (`what` names the call in messages).
 * @param {unknown} options
 * @param {string} what
 * @returns {Record<string, unknown>}
 */
export function options(options, what) {
  if (!isObject(options)) {
    throw invalid(`${what}: options must be an object`);
  }
  return options;
}

/**
 * A required identifier (userID, groupID, inviteID): a non-empty string of at most `max` bytes
 * without control characters.
 * @param {unknown} value
 * @param {string} field
 * @param {number} max
 * @returns {string}
 */
export function identifier(value, field, max) {
  if (typeof value !== 'string') {
    throw invalid(`${field} must be a string, got ${describe(value)}`);
  }
  const length = utf8Length(value);
  if (length === 0 || length > max) {
    throw invalid(`${field} must be 1 to ${max} bytes long, got ${length}`);
  }
  if (CONTROL.test(value)) {
    throw invalid(`${field} must not contain control characters`);
  }
  return value;
}

/**
 * @param {unknown} value
 * @param {string} [field]
 */
export function userID(value, field = 'userID') {
  return identifier(value, field, LIMITS.MAX_USER_ID_BYTES);
}

/** @param {unknown} value */
export function groupID(value) {
  return identifier(value, 'groupID', LIMITS.MAX_GROUP_ID_BYTES);
}

/**
 * A required inviteID of an existing invitation: any non-empty string (the server says 8010 /
 * 8020 for one that names no invitation).
 * @param {unknown} value
 * @returns {string}
 */
export function inviteID(value) {
  if (typeof value !== 'string' || value.length === 0) {
    throw invalid(`inviteID must be a non-empty string, got ${describe(value)}`);
  }
  return value;
}

/**
 * `data`: a string of at most 8192 bytes of UTF-8. Optional unless `required`.
 * @param {unknown} value
 * @param {boolean} required
 * @returns {string | undefined}
 */
export function data(value, required) {
  if (value === undefined) {
    if (required) {
      throw invalid('data is required (a string)');
    }
    return undefined;
  }
  if (typeof value !== 'string') {
    throw invalid(`data must be a string, got ${describe(value)}`);
  }
  const length = utf8Length(value);
  if (length > LIMITS.MAX_DATA_BYTES) {
    throw new BeckonError(
      ERROR_CODE.TOO_LARGE,
      `data is ${length} bytes; the limit is ${LIMITS.MAX_DATA_BYTES} bytes`,
    );
  }
  return value;
}

/**
 * An optional integer in [min, max].
 * @param {unknown} value
 * @param {string} field
 * @param {number} min
 * @param {number} max
 * @returns {number | undefined}
 */
export function optionalInteger(value, field, min, max) {
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${field} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

/**
 * @param {unknown} value
 * @param {string} field
 * @returns {boolean | undefined}
 */
export function optionalBoolean(value, field) {
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== 'boolean') {
    throw invalid(`${field} must be a boolean, got ${describe(value)}`);
  }
  return value;
}

/**
 * @param {unknown} value
 * @param {string} field
 * @returns {string | undefined}
 */
export function optionalString(value, field) {
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== 'string') {
    throw invalid(`${field} must be a string, got ${describe(value)}`);
  }
  return value;
}

/**
 * @param {unknown} value
 * @param {string} field
 * @returns {Record<string, unknown> | undefined}
 */
export function optionalObject(value, field) {
  if (value === undefined) {
    return undefined;
  }
  if (!isObject(value)) {
    throw invalid(`${field} must be an object, got ${describe(value)}`);
  }
  return value;
}

/**
 * A list of userIDs.
 * @param {unknown} value
 * @param {string} field
 * @param {number} min
 * @param {number} max
 * @returns {string[]}
 */
export function userIDList(value, field, min, max) {
  if (!Array.isArray(value)) {
    throw invalid(`${field} must be an array of userIDs, got ${describe(value)}`);
  }
  if (value.length < min || value.length > max) {
    throw invalid(`${field} must hold ${min} to ${max} userIDs, got ${value.length}`);
  }
  return value.map((each, index) => userID(each, `${field}[${index}]`));
}

/**
 * A short description of a value's type for error messages.
 * @param {unknown} value
 */
export function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? 'a string' : JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}
