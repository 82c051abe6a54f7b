mod cli;
mod crash;
mod daemon;
mod grants;
mod journal;
mod migrations;
mod restore;
mod stations;
