"""Uptime Kuma's SQLite schema for the tables the importer reads, as its migrations leave them.

Typed from Kuma's published migrations (db/kuma.db's base tables, then db/old_migrations'
patch4..patch10 and the patch-*.sql files up to 1.23.x); V2 holds the columns its knex
migrations add in 2.x that the importer reads.
"""

from __future__ import annotations

V1_23 = """
CREATE TABLE [user](
  [id] INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  [username] VARCHAR(255) NOT NULL UNIQUE,
  [password] VARCHAR(255),
  [active] BOOLEAN NOT NULL DEFAULT 1,
  [timezone] VARCHAR(150));
CREATE TABLE monitor (
  id INTEGER not null primary key autoincrement,
  name VARCHAR(150),
  active BOOLEAN default 1 not null,
  user_id INTEGER references user on update cascade on delete set null,
  interval INTEGER default 20 not null,
  url TEXT,
  type VARCHAR(20),
  weight INTEGER default 2000,
  hostname VARCHAR(255),
  port INTEGER,
  created_date DATETIME default (DATETIME('now')) not null,
  keyword VARCHAR(255),
  maxretries INTEGER NOT NULL DEFAULT 0,
  ignore_tls BOOLEAN default 0 not null,
  upside_down BOOLEAN default 0 not null,
  maxredirects INTEGER default 10 not null,
  accepted_statuscodes_json TEXT default '["200-299"]' not null,
  dns_resolve_type VARCHAR(5),
  dns_resolve_server VARCHAR(255),
  dns_last_result VARCHAR(255),
  retry_interval INTEGER default 0 not null,
  push_token VARCHAR(20) DEFAULT NULL,
  method TEXT default 'GET' not null,
  body TEXT default null,
  headers TEXT default null,
  basic_auth_user TEXT default null,
  basic_auth_pass TEXT default null,
  timeout DOUBLE default 0 not null,
  parent INTEGER REFERENCES [monitor] ([id]) ON DELETE SET NULL ON UPDATE CASCADE,
  description TEXT default null,
  invert_keyword BOOLEAN default 0 not null,
  json_path TEXT,
  expected_value VARCHAR(255),
  auth_method VARCHAR(250),
  auth_domain TEXT,
  auth_workstation TEXT,
  http_body_encoding VARCHAR(25)
);
CREATE TABLE [notification](
  [id] INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  [name] VARCHAR(255),
  [active] BOOLEAN NOT NULL DEFAULT 1,
  [user_id] INTEGER NOT NULL,
  is_default BOOLEAN default 0 NOT NULL,
  config TEXT);
CREATE TABLE [monitor_notification](
  [id] INTEGER PRIMARY KEY NOT NULL,
  [monitor_id] INTEGER NOT NULL REFERENCES [monitor]([id]) ON DELETE CASCADE ON UPDATE CASCADE,
  [notification_id] INTEGER NOT NULL REFERENCES [notification]([id])
    ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE tag (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  name VARCHAR(255) NOT NULL,
  color VARCHAR(255) NOT NULL,
  created_date DATETIME DEFAULT (DATETIME('now')) NOT NULL);
CREATE TABLE monitor_tag (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  monitor_id INTEGER NOT NULL,
  tag_id INTEGER NOT NULL,
  value TEXT,
  CONSTRAINT FK_tag FOREIGN KEY (tag_id) REFERENCES tag(id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT FK_monitor FOREIGN KEY (monitor_id) REFERENCES monitor(id)
    ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE [maintenance] (
  [id] INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  [title] VARCHAR(150) NOT NULL,
  [description] TEXT NOT NULL,
  [user_id] INTEGER REFERENCES [user]([id]) ON DELETE SET NULL ON UPDATE CASCADE,
  [active] BOOLEAN NOT NULL DEFAULT 1,
  [strategy] VARCHAR(50) NOT NULL DEFAULT 'single',
  [start_date] DATETIME,
  [end_date] DATETIME,
  [start_time] TIME,
  [end_time] TIME,
  [weekdays] VARCHAR2(250) DEFAULT '[]',
  [days_of_month] TEXT DEFAULT '[]',
  [interval_day] INTEGER,
  cron TEXT,
  timezone VARCHAR(255),
  duration INTEGER);
CREATE TABLE monitor_maintenance (
  id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  monitor_id INTEGER NOT NULL,
  maintenance_id INTEGER NOT NULL,
  CONSTRAINT FK_maintenance FOREIGN KEY (maintenance_id) REFERENCES maintenance (id)
    ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT FK_monitor FOREIGN KEY (monitor_id) REFERENCES monitor (id)
    ON DELETE CASCADE ON UPDATE CASCADE);
"""

# 2.x (knex): 2024-04-26 snmp-monitor adds json_path_operator, 2024-08-24 conditions.
V2 = """
ALTER TABLE monitor ADD json_path_operator VARCHAR(255) DEFAULT NULL;
ALTER TABLE monitor ADD conditions TEXT NOT NULL DEFAULT '[]';
"""
