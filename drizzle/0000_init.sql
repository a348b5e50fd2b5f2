CREATE TABLE `agent_request_nonces` (
	`jti` text PRIMARY KEY NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `agent_request_nonces_expires_at_idx` ON `agent_request_nonces` (`expires_at`);--> statement-breakpoint
CREATE TABLE `agents` (
	`spiffe_id` text PRIMARY KEY NOT NULL,
	`attestation_type` text NOT NULL,
	`serial` text NOT NULL,
	`previous_serial` text,
	`expires_at` integer NOT NULL,
	`banned` integer DEFAULT false NOT NULL,
	`node_selectors` text DEFAULT '[]' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `entries` (
	`id` text PRIMARY KEY NOT NULL,
	`spiffe_id` text NOT NULL,
	`parent_id` text NOT NULL,
	`selectors` text NOT NULL,
	`selectors_key` text NOT NULL,
	`x509_svid_ttl` integer DEFAULT 0 NOT NULL,
	`jwt_svid_ttl` integer DEFAULT 0 NOT NULL,
	`dns_names` text DEFAULT '[]' NOT NULL,
	`federates_with` text DEFAULT '[]' NOT NULL,
	`admin` integer DEFAULT false NOT NULL,
	`downstream` integer DEFAULT false NOT NULL,
	`hint` text DEFAULT '' NOT NULL,
	`expires_at` integer DEFAULT 0 NOT NULL,
	`revision_number` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `entries_spiffe_id_parent_id_selectors_key_unique` ON `entries` (`spiffe_id`,`parent_id`,`selectors_key`);--> statement-breakpoint
CREATE INDEX `entries_parent_id_idx` ON `entries` (`parent_id`);--> statement-breakpoint
CREATE TABLE `entry_selectors` (
	`entry_id` text NOT NULL,
	`type` text NOT NULL,
	`value` text NOT NULL,
	PRIMARY KEY(`entry_id`, `type`, `value`),
	FOREIGN KEY (`entry_id`) REFERENCES `entries`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `entry_selectors_type_value_idx` ON `entry_selectors` (`type`,`value`);--> statement-breakpoint
CREATE TABLE `join_tokens` (
	`token_hash` text PRIMARY KEY NOT NULL,
	`spiffe_id` text,
	`expires_at` integer NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `join_tokens_expires_at_idx` ON `join_tokens` (`expires_at`);--> statement-breakpoint
CREATE TABLE `registry_revision` (
	`id` integer PRIMARY KEY NOT NULL,
	`revision` integer NOT NULL,
	CONSTRAINT "registry_revision_single_row" CHECK("registry_revision"."id" = 1)
);
