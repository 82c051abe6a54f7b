mod cli;
mod crash;
mod grants;
mod journal;
mod migrations;
mod restore;
