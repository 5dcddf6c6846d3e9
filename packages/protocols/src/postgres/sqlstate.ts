/**
 * SQLSTATE codes the gateway and connector answer with, named as in the server's
 * `src/backend/utils/errcodes.txt` (https://www.postgresql.org/docs/current/errcodes-appendix.html).
 * Only real codes: "not supported" is `featureNotSupported`, never an invented one.
 */
export const SqlState = {
  /** 08000 */ connectionException: "08000",
  /** 08001 */ sqlclientUnableToEstablishSqlconnection: "08001",
  /** 08004 */ sqlserverRejectedEstablishmentOfSqlconnection: "08004",
  /** 08006 */ connectionFailure: "08006",
  /** 08P01 */ protocolViolation: "08P01",
  /** 0A000 */ featureNotSupported: "0A000",
  /** 28000 */ invalidAuthorizationSpecification: "28000",
  /** 28P01 */ invalidPassword: "28P01",
  /** 3D000 */ invalidCatalogName: "3D000",
  /** 42501 */ insufficientPrivilege: "42501",
  /** 53000 */ insufficientResources: "53000",
  /** 53100 */ diskFull: "53100",
  /** 53300 */ tooManyConnections: "53300",
  /** 54000 */ programLimitExceeded: "54000",
  /** 57014 */ queryCanceled: "57014",
  /** 57P01 */ adminShutdown: "57P01",
  /** 57P03 */ cannotConnectNow: "57P03",
  /** 58000 */ systemError: "58000",
  /** XX000 */ internalError: "XX000",
} as const;
export type SqlState = (typeof SqlState)[keyof typeof SqlState];
